//! Signed agent releases on the gateway: the offer an agent gets when it connects (or when a
//! release is added or its rollout widened), and the binary it then downloads over the same
//! mutual TLS, in chunks.

use std::path::PathBuf;

use agent_proto::limits::MAX_CHUNK_BYTES;
use agent_proto::v1::{DownloadChunk, UpdateOffer, gateway_message};
use agent_release::{Platform, Version};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tonic::Status;

use crate::{GatewayHandle, Releases};

/// The offer for an agent of `platform` running `version`, if its share of the rollout has one.
pub(crate) fn offer(
    releases: &Releases,
    agent_id: &str,
    platform: &str,
    version: &str,
) -> Option<UpdateOffer> {
    let platform: Platform = platform.parse().ok()?;
    let running: Version = version.parse().ok()?;
    let store = releases.read().ok()?;
    let offer = store.offer_for(agent_id, platform, running)?;
    Some(UpdateOffer {
        platform: offer.platform.proto_number(),
        version: offer.version.to_string(),
        manifest: offer.manifest.to_vec(),
        download_path: offer.download_path.to_owned(),
        roots: offer.roots.to_vec(),
    })
}

/// The file a download path names, if it is a release on offer.
pub(crate) fn binary(releases: &Releases, path: &str) -> Option<PathBuf> {
    releases.read().ok()?.binary_for_download(path)
}

/// Streams `file` in chunks; a read error ends the stream with `UNAVAILABLE`.
pub(crate) async fn send_file(file: PathBuf, tx: mpsc::Sender<Result<DownloadChunk, Status>>) {
    let mut opened = match tokio::fs::File::open(&file).await {
        Ok(opened) => opened,
        Err(err) => {
            tracing::error!(file = %file.display(), error = %err, "Cannot read an agent release.");
            let _ = tx
                .send(Err(Status::unavailable(
                    "the release cannot be read on the appliance",
                )))
                .await;
            return;
        }
    };
    let mut buffer = vec![0; MAX_CHUNK_BYTES];
    loop {
        match opened.read(&mut buffer).await {
            Ok(0) => return,
            Ok(n) => {
                let chunk = DownloadChunk {
                    data: buffer[..n].to_vec(),
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
            Err(err) => {
                tracing::error!(file = %file.display(), error = %err, "Reading an agent release failed.");
                let _ = tx
                    .send(Err(Status::unavailable(
                        "the release cannot be read on the appliance",
                    )))
                    .await;
                return;
            }
        }
    }
}

/// Offers the current releases to every connected agent whose share of the rollout has one
/// (after a release was added or its rollout changed); returns how many were offered one.
pub fn offer_to_connected(handle: &GatewayHandle, releases: &Releases) -> usize {
    handle
        .connected()
        .into_iter()
        .filter_map(|agent| {
            let offer = offer(
                releases,
                &agent.agent_id,
                &agent.platform,
                &agent.agent_version,
            )?;
            handle
                .send(&agent.agent_id, gateway_message::Kind::UpdateOffer(offer))
                .ok()
        })
        .count()
}
