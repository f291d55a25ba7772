//! `LabCalendar`: a loopback OpenTimestamps calendar plus Esplora endpoints over a simulated
//! regtest-difficulty Bitcoin chain whose blocks commit to the calendar's pending digests.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ots::bitcoin::{BlockHeader, sha256d};
use ots::{Attestation, Op, Timestamp};
use sha2::{Digest, Sha256};

/// A running calendar + Esplora server on 127.0.0.1; stops when dropped.
pub struct LabCalendar {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Height of the first block [`LabCalendar::mine`] produces.
pub const FIRST_HEIGHT: u64 = 800_000;
/// Regtest compact target: about half of all hashes qualify.
pub const REGTEST_BITS: u32 = 0x207f_ffff;
/// Largest digest `POST /digest` accepts, as the reference calendar.
const MAX_DIGEST_LENGTH: usize = 64;
/// Body of the 404 for a commitment not yet in a block, as the reference calendar.
pub const PENDING_BODY: &str = "Pending confirmation in Bitcoin blockchain";

impl LabCalendar {
    /// Binds 127.0.0.1:0 and serves on a dedicated thread with its own Tokio runtime,
    /// so both sync and async tests can use it.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            n_requests: AtomicU64::new(0),
            chain: Mutex::new(Chain::default()),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let router = router(Arc::clone(&shared));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lab-calendar".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async {
                            let _ = shutdown_rx.await;
                        })
                        .await;
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("lab calendar thread exited before serving"))??;
        Ok(LabCalendar {
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`, also the URI in the pending attestations it hands out.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Number of HTTP requests received so far (any path).
    pub fn n_requests(&self) -> u64 {
        self.shared.n_requests.load(Ordering::SeqCst)
    }

    /// Number of commitments waiting for the next block.
    pub fn n_pending(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// Mines one block committing to every pending commitment and returns its height.
    ///
    /// The pending commitments form a SHA-256 merkle tree (the reference `make_merkle_tree`);
    /// its root goes into the OP_RETURN output of a Bitcoin transaction, which sits with a
    /// coinbase and a filler transaction in a block whose header meets the regtest target.
    pub fn mine(&self) -> u64 {
        let mut chain = self.shared.lock();
        let pending = std::mem::take(&mut chain.pending);
        let height = FIRST_HEIGHT + chain.headers.len() as u64;
        let (prev_hash, prev_time) = match chain.headers.last() {
            Some(header) => (header.block_hash(), header.time()),
            None => (sha256d(b"osiris lab calendar genesis"), 0),
        };

        // Commitments -> calendar merkle root.
        let leaves: Vec<[u8; 32]> = if pending.is_empty() {
            vec![sha256d(&height.to_le_bytes())]
        } else {
            pending.clone()
        };
        let (root, mut paths) = calendar_merkle_tree(&leaves);

        // Root -> transaction id.
        let (tx_prefix, tx_suffix) = op_return_tx_parts(height);
        let tx = [tx_prefix.as_slice(), &root, &tx_suffix].concat();
        let txid = sha256d(&tx);
        let tx_ops = [
            Op::Prepend(tx_prefix),
            Op::Append(tx_suffix),
            Op::Sha256,
            Op::Sha256,
        ];

        // Transaction id -> block merkle root (coinbase, ours, filler).
        let coinbase_txid = sha256d(&coinbase_tx(height));
        let filler_txid = sha256d(&[b"filler".as_slice(), &height.to_le_bytes()].concat());
        let (merkle_root, block_ops) = bitcoin_merkle_path(&[coinbase_txid, txid, filler_txid], 1);

        let time = u32::try_from(unix_now())
            .unwrap_or(u32::MAX)
            .max(prev_time.saturating_add(1));
        let header = mine_header(&prev_hash, &merkle_root, time);

        for (leaf_idx, commitment) in pending.iter().enumerate() {
            let ops: Vec<Op> = paths[leaf_idx]
                .drain(..)
                .chain(tx_ops.iter().cloned())
                .chain(block_ops.iter().cloned())
                .collect();
            let Some(proof) = linear_proof(commitment, ops, Attestation::Bitcoin { height }) else {
                // Ops on 32-byte messages with short arguments stay within the format's limits.
                continue;
            };
            chain.proofs.insert(*commitment, proof);
        }
        chain.headers.push(header);
        height
    }

    /// The header of the block at `height`, if mined.
    pub fn header(&self, height: u64) -> Option<BlockHeader> {
        let idx = usize::try_from(height.checked_sub(FIRST_HEIGHT)?).ok()?;
        self.shared.lock().headers.get(idx).copied()
    }

    /// All mined headers in the block headers file format (`<height> <hex>` lines).
    pub fn headers_file(&self) -> String {
        let chain = self.shared.lock();
        let mut res = String::from("# Block headers of the osiris lab calendar chain.\n");
        for (idx, header) in chain.headers.iter().enumerate() {
            let height = FIRST_HEIGHT + idx as u64;
            res.push_str(&format!("{height} {}\n", header.to_hex()));
        }
        res
    }
}

impl Drop for LabCalendar {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    base_url: String,
    n_requests: AtomicU64,
    chain: Mutex<Chain>,
}

#[derive(Default)]
struct Chain {
    pending: Vec<[u8; 32]>,
    proofs: HashMap<[u8; 32], Timestamp>,
    headers: Vec<BlockHeader>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self) {
        self.n_requests.fetch_add(1, Ordering::SeqCst);
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/digest", post(post_digest))
        .route("/timestamp/{commitment}", get(get_timestamp))
        .route("/block-height/{height}", get(get_block_hash))
        .route("/block/{hash}/header", get(get_block_header))
        .fallback(fallback)
        .with_state(shared)
}

async fn post_digest(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared.count();
    if body.is_empty() || body.len() > MAX_DIGEST_LENGTH {
        return (StatusCode::BAD_REQUEST, "digest must be 1 to 64 bytes").into_response();
    }
    let nonce: [u8; 16] = rand::random();
    let mut stamp = Timestamp::new(body.to_vec());
    let commitment: [u8; 32] = Sha256::digest([body.as_ref(), &nonce].concat()).into();
    let pending = match Attestation::pending(&shared.base_url) {
        Ok(pending) => pending,
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    let added = stamp
        .add_op(Op::Append(nonce.to_vec()))
        .and_then(|child| child.add_op(Op::Sha256));
    match added {
        Ok(node) => node.add_attestation(pending),
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
    shared.lock().pending.push(commitment);
    ots_response(stamp.to_bytes())
}

async fn get_timestamp(
    State(shared): State<Arc<Shared>>,
    Path(commitment): Path<String>,
) -> Response {
    shared.count();
    let Ok(commitment) =
        <[u8; 32]>::try_from(hex::decode(&commitment).unwrap_or_default().as_slice())
    else {
        return (StatusCode::BAD_REQUEST, "commitment must be 64 hex digits").into_response();
    };
    let chain = shared.lock();
    if let Some(proof) = chain.proofs.get(&commitment) {
        return ots_response(proof.to_bytes());
    }
    if chain.pending.contains(&commitment) {
        return (StatusCode::NOT_FOUND, PENDING_BODY).into_response();
    }
    (StatusCode::NOT_FOUND, "Not found").into_response()
}

async fn get_block_hash(State(shared): State<Arc<Shared>>, Path(height): Path<u64>) -> Response {
    shared.count();
    let chain = shared.lock();
    let header = height
        .checked_sub(FIRST_HEIGHT)
        .and_then(|idx| usize::try_from(idx).ok())
        .and_then(|idx| chain.headers.get(idx));
    match header {
        Some(header) => header.block_hash_hex().into_response(),
        None => (StatusCode::NOT_FOUND, "Block not found").into_response(),
    }
}

async fn get_block_header(State(shared): State<Arc<Shared>>, Path(hash): Path<String>) -> Response {
    shared.count();
    let chain = shared.lock();
    match chain
        .headers
        .iter()
        .find(|header| header.block_hash_hex() == hash)
    {
        Some(header) => header.to_hex().into_response(),
        None => (StatusCode::NOT_FOUND, "Block not found").into_response(),
    }
}

async fn fallback(State(shared): State<Arc<Shared>>) -> Response {
    shared.count();
    (StatusCode::NOT_FOUND, "Not found").into_response()
}

fn ots_response(body: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        body,
    )
        .into_response()
}

/// The reference `make_merkle_tree` with `cat_sha256`: returns the root and, per leaf,
/// the ops from the leaf to the root.
fn calendar_merkle_tree(leaves: &[[u8; 32]]) -> ([u8; 32], Vec<Vec<Op>>) {
    let mut paths: Vec<Vec<Op>> = vec![Vec::new(); leaves.len()];
    let mut level: Vec<([u8; 32], Vec<usize>)> = leaves
        .iter()
        .enumerate()
        .map(|(idx, leaf)| (*leaf, vec![idx]))
        .collect();
    loop {
        let mut next = Vec::new();
        let mut prev: Option<([u8; 32], Vec<usize>)> = None;
        for stamp in level {
            match prev.take() {
                Some((left, left_leaves)) => {
                    let (right, right_leaves) = stamp;
                    for &leaf in &left_leaves {
                        paths[leaf].extend([Op::Append(right.to_vec()), Op::Sha256]);
                    }
                    for &leaf in &right_leaves {
                        paths[leaf].extend([Op::Prepend(left.to_vec()), Op::Sha256]);
                    }
                    let parent: [u8; 32] = Sha256::digest([left, right].concat()).into();
                    next.push((parent, [left_leaves, right_leaves].concat()));
                }
                None => prev = Some(stamp),
            }
        }
        if next.is_empty() {
            // A non-empty input always leaves one stamp here.
            let root = prev.map(|(root, _)| root).unwrap_or_default();
            return (root, paths);
        }
        if let Some(stamp) = prev {
            next.push(stamp);
        }
        level = next;
    }
}

/// Bitcoin's transaction merkle tree (odd levels duplicate their last hash): the root and the
/// ops from transaction `idx`'s id to it, as cat_sha256d steps.
fn bitcoin_merkle_path(txids: &[[u8; 32]], mut idx: usize) -> ([u8; 32], Vec<Op>) {
    let mut ops = Vec::new();
    let mut level = txids.to_vec();
    while level.len() > 1 {
        if !level.len().is_multiple_of(2) {
            level.push(level[level.len() - 1]);
        }
        let sibling = level[idx ^ 1];
        if idx.is_multiple_of(2) {
            ops.push(Op::Append(sibling.to_vec()));
        } else {
            ops.push(Op::Prepend(sibling.to_vec()));
        }
        ops.extend([Op::Sha256, Op::Sha256]);
        level = level
            .chunks(2)
            .map(|pair| sha256d(&[pair[0], pair[1]].concat()))
            .collect();
        idx /= 2;
    }
    (level[0], ops)
}

/// A version-1 transaction spending a made-up output into one OP_RETURN output holding
/// 32 bytes: returns the bytes before and after those 32 bytes.
fn op_return_tx_parts(height: u64) -> (Vec<u8>, Vec<u8>) {
    let mut prefix = Vec::new();
    prefix.extend_from_slice(&1u32.to_le_bytes()); // Version.
    prefix.push(1); // One input.
    prefix.extend_from_slice(&sha256d(
        &[b"funding".as_slice(), &height.to_le_bytes()].concat(),
    ));
    prefix.extend_from_slice(&0u32.to_le_bytes()); // Output index spent.
    prefix.push(0); // Empty scriptSig.
    prefix.extend_from_slice(&0xffff_fffdu32.to_le_bytes()); // Sequence.
    prefix.push(1); // One output.
    prefix.extend_from_slice(&0u64.to_le_bytes()); // Value.
    prefix.push(34); // Script length: OP_RETURN, PUSH32, 32 bytes.
    prefix.extend_from_slice(&[0x6a, 0x20]);
    let suffix = 0u32.to_le_bytes().to_vec(); // Lock time.
    (prefix, suffix)
}

/// A coinbase transaction with the BIP 34 height push and one anyone-can-spend output.
fn coinbase_tx(height: u64) -> Vec<u8> {
    let mut tx = Vec::new();
    tx.extend_from_slice(&1u32.to_le_bytes());
    tx.push(1);
    tx.extend_from_slice(&[0u8; 32]);
    tx.extend_from_slice(&0xffff_ffffu32.to_le_bytes());
    let height_bytes = &height.to_le_bytes()[..3];
    tx.push(4); // scriptSig length.
    tx.push(3); // Push 3 bytes.
    tx.extend_from_slice(height_bytes);
    tx.extend_from_slice(&0xffff_ffffu32.to_le_bytes());
    tx.push(1);
    tx.extend_from_slice(&312_500_000u64.to_le_bytes());
    tx.push(1);
    tx.push(0x51); // OP_TRUE.
    tx.extend_from_slice(&0u32.to_le_bytes());
    tx
}

/// The chain of `ops` from `commitment`, ending in `attestation`; `None` if an op fails.
fn linear_proof(
    commitment: &[u8; 32],
    ops: Vec<Op>,
    attestation: Attestation,
) -> Option<Timestamp> {
    let mut msgs = vec![commitment.to_vec()];
    for op in &ops {
        let next = op.apply(msgs.last()?).ok()?;
        msgs.push(next);
    }
    let mut node = Timestamp::new(msgs.pop()?);
    node.add_attestation(attestation);
    for (op, msg) in ops.into_iter().rev().zip(msgs.into_iter().rev()) {
        let mut parent = Timestamp::new(msg);
        parent.ops.push((op, node));
        node = parent;
    }
    Some(node)
}

fn mine_header(prev_hash: &[u8; 32], merkle_root: &[u8; 32], time: u32) -> BlockHeader {
    let mut bytes = [0u8; 80];
    bytes[0..4].copy_from_slice(&0x2000_0000u32.to_le_bytes());
    bytes[4..36].copy_from_slice(prev_hash);
    bytes[36..68].copy_from_slice(merkle_root);
    bytes[68..72].copy_from_slice(&time.to_le_bytes());
    bytes[72..76].copy_from_slice(&REGTEST_BITS.to_le_bytes());
    let mut nonce = 0u32;
    loop {
        bytes[76..80].copy_from_slice(&nonce.to_le_bytes());
        // The header is always 80 bytes, so wrapping cannot fail; retry on the impossible error.
        if let Ok(header) = BlockHeader::from_bytes(&bytes)
            && header.check_proof_of_work().is_ok()
        {
            return header;
        }
        nonce = nonce.wrapping_add(1);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
