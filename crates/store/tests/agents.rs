//! The agent registry against a real SQLite store: tokens are taken once, refused for the right
//! reason, and an agent's stored sequence moves only with the bundles that record its items.

mod common;

use common::{config, scan_draft, verify_log};
use store::{NewAgent, NewAgentToken, Store, TokenRefusal};

fn token(id: &str, secret: u8, uses: u32, expires_at: i64) -> NewAgentToken {
    NewAgentToken {
        id: id.to_owned(),
        hash: [secret; 32],
        uses,
        created_at: 1_000,
        expires_at,
        created_by: "root".to_owned(),
    }
}

fn agent(id: &str, token_id: &str, cert: u8) -> NewAgent {
    NewAgent {
        agent_id: id.to_owned(),
        hostname: format!("{id}.clinic.local"),
        os: "Debian GNU/Linux".to_owned(),
        os_version: "12".to_owned(),
        platform: "linux-x86_64".to_owned(),
        agent_version: "0.1.0".to_owned(),
        device_public_key: [7; 32],
        cert_sha256: [cert; 32],
        cert_not_after: 5_000,
        token_id: token_id.to_owned(),
        enrolled_at: 1_500,
    }
}

#[tokio::test]
async fn tokens_are_taken_once_per_use_and_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).await.unwrap();
    store
        .create_agent_token(token("t-1", 1, 2, 2_000))
        .await
        .unwrap();
    store
        .create_agent_token(token("t-2", 2, 1, 2_000))
        .await
        .unwrap();
    assert_eq!(
        store.take_agent_token([1; 32], 1_100).await.unwrap(),
        Ok("t-1".to_owned())
    );
    assert_eq!(
        store.take_agent_token([1; 32], 1_100).await.unwrap(),
        Ok("t-1".to_owned())
    );
    assert_eq!(
        store.take_agent_token([1; 32], 1_100).await.unwrap(),
        Err(TokenRefusal::UsedUp)
    );
    assert_eq!(
        store.take_agent_token([9; 32], 1_100).await.unwrap(),
        Err(TokenRefusal::Unknown)
    );
    assert_eq!(
        store.take_agent_token([2; 32], 2_000).await.unwrap(),
        Err(TokenRefusal::Expired)
    );
    assert!(store.revoke_agent_token("t-2", 1_200).await.unwrap());
    assert!(
        !store.revoke_agent_token("t-2", 1_200).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        store.take_agent_token([2; 32], 1_300).await.unwrap(),
        Err(TokenRefusal::Revoked)
    );
    store.return_agent_token("t-1").await.unwrap();
    let tokens = store.agent_tokens().await.unwrap();
    let t1 = tokens.iter().find(|t| t.id == "t-1").unwrap();
    assert_eq!((t1.uses_total, t1.uses_left), (2, 1));
    store.close().await;
}

#[tokio::test]
async fn enrollment_items_and_revocation_move_with_their_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).await.unwrap();
    store
        .create_agent_token(token("t-1", 1, 5, 9_000))
        .await
        .unwrap();
    let enrolled = store
        .enroll_agent(agent("a-1", "t-1", 3), scan_draft(0))
        .await
        .unwrap();
    let record = store
        .agent_by_certificate(&[3; 32], 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.enrollment_seq, enrolled.seq);
    assert_eq!(record.stored_seq, 0);
    assert!(
        store
            .agent_by_certificate(&[4; 32], 2_000)
            .await
            .unwrap()
            .is_none()
    );

    let sealed = store
        .append_agent_items("a-1", 3, 2_100, (1..4).map(scan_draft).collect())
        .await
        .unwrap();
    assert_eq!(sealed.len(), 3);
    let record = store.agent("a-1").await.unwrap().unwrap();
    assert_eq!((record.stored_seq, record.last_seen_at), (3, Some(2_100)));
    // A resend of older items never moves the stored number back.
    store
        .append_agent_items("a-1", 2, 2_200, Vec::new())
        .await
        .unwrap();
    assert_eq!(store.agent("a-1").await.unwrap().unwrap().stored_seq, 3);

    // After a renewal both certificates identify the agent until the old one expires.
    store
        .renew_agent_certificate("a-1", [5; 32], 9_000)
        .await
        .unwrap();
    assert!(
        store
            .agent_by_certificate(&[5; 32], 2_300)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .agent_by_certificate(&[3; 32], 2_300)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .agent_by_certificate(&[3; 32], 5_000)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );

    let revoked = store
        .revoke_agent("a-1", 2_400, scan_draft(9))
        .await
        .unwrap();
    assert!(revoked.is_some());
    assert!(
        store
            .revoke_agent("a-1", 2_500, scan_draft(10))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .revoke_agent("nobody", 2_500, scan_draft(10))
            .await
            .unwrap()
            .is_none()
    );
    let record = store.agent("a-1").await.unwrap().unwrap();
    assert_eq!(record.revoked_at, Some(2_400));
    assert_eq!(
        verify_log(&store).await,
        5,
        "enrollment, three items, revocation"
    );
    store.close().await;

    // Everything survives a reopen.
    let store = Store::open(&config(dir.path())).await.unwrap();
    assert_eq!(store.agents().await.unwrap().len(), 1);
    assert_eq!(store.agent("a-1").await.unwrap().unwrap().stored_seq, 3);
    store.close().await;
}
