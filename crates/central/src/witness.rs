//! The checkpoint witness, pure part: given the last checkpoint accepted for an appliance and a
//! new signed checkpoint with a consistency proof, decide whether to cosign it or to refuse it as
//! a fork. No IO: the caller loads the last accepted head under a row lock and stores the verdict.

use evidence::{Checkpoint, VerifierKey, WitnessKey};

/// The newest checkpoint the witness accepted (and cosigned) for one appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Tree size.
    pub size: u64,
    /// Merkle root.
    pub root: [u8; 32],
    /// The signed checkpoint note as the appliance sent it.
    pub note: String,
}

/// What the witness decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The checkpoint extends the last accepted one (or is the first): it becomes the new head,
    /// and `cosignature` is the signature line to return and keep.
    Cosign {
        /// The accepted checkpoint.
        head: Head,
        /// The C2SP cosignature line (with its final newline).
        cosignature: String,
    },
    /// The same checkpoint as the head again (a retried push): cosigned again, head unchanged.
    Repeat {
        /// A fresh cosignature line over the same checkpoint.
        cosignature: String,
    },
    /// The checkpoint does not extend the head: the appliance's log was rewritten (or its key
    /// used to sign another history). Nothing is cosigned; the caller keeps both as proof and
    /// raises a critical alert.
    Fork {
        /// Why, in words for the partner.
        reason: String,
        /// The offered checkpoint (signature verified).
        offered: Checkpoint,
    },
}

/// A push the witness cannot even judge (nothing is recorded beyond the refusal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The note is malformed, not signed by this appliance's key, or names another log.
    #[error("the checkpoint is not a valid checkpoint of this appliance: {0}")]
    Invalid(String),
    /// Older than the head: a replayed or reordered push; the appliance should send its newest.
    #[error(
        "the checkpoint (size {offered}) is older than the last one witnessed (size {head}); send the newest checkpoint"
    )]
    Stale {
        /// Offered size.
        offered: u64,
        /// Head size.
        head: u64,
    },
    /// The proof starts from another size than the witnessed head (the appliance had not
    /// learnt the newest head, e.g. two pushes crossed): not a fork; retry from `head`.
    #[error(
        "the consistency proof starts at size {from}, but the witnessed head has size {head}; send a proof from size {head}"
    )]
    ProofFromWrongSize {
        /// The size the proof starts at.
        from: u64,
        /// The head's size.
        head: u64,
    },
    /// More proof hashes than any tree of 2^64 leaves needs: malformed or hostile.
    #[error("the consistency proof has {0} hashes; at most 128 are ever needed")]
    ProofTooLong(usize),
}

/// Judges `note` (signed by `appliance`) against `head`, with `proof` from size `proof_from`
/// (which must be the head's size when the checkpoint is larger) to it.
pub fn judge(
    appliance: &VerifierKey,
    head: Option<&Head>,
    note: &str,
    proof_from: u64,
    proof: &[[u8; 32]],
    witness: &WitnessKey,
    now: u64,
) -> Result<Verdict, WitnessError> {
    if proof.len() > 128 {
        return Err(WitnessError::ProofTooLong(proof.len()));
    }
    let offered = Checkpoint::parse_and_verify(note, appliance)
        .map_err(|err| WitnessError::Invalid(err.to_string()))?;
    let body = offered.body();
    let cosign = || witness.cosign(&body, now);
    let Some(head) = head else {
        // The first checkpoint after the claim is trusted as the start of this log's history.
        return Ok(Verdict::Cosign {
            head: Head {
                size: offered.size,
                root: offered.root,
                note: note.to_owned(),
            },
            cosignature: cosign(),
        });
    };
    if offered.size < head.size {
        return Err(WitnessError::Stale {
            offered: offered.size,
            head: head.size,
        });
    }
    if offered.size == head.size {
        return Ok(if offered.root == head.root {
            Verdict::Repeat {
                cosignature: cosign(),
            }
        } else {
            Verdict::Fork {
                reason: format!(
                    "two different logs of size {}: the appliance's history was rewritten",
                    offered.size
                ),
                offered,
            }
        });
    }
    if proof_from != head.size {
        return Err(WitnessError::ProofFromWrongSize {
            from: proof_from,
            head: head.size,
        });
    }
    if evidence::verify_consistency(head.size, offered.size, &head.root, &offered.root, proof) {
        Ok(Verdict::Cosign {
            head: Head {
                size: offered.size,
                root: offered.root,
                note: note.to_owned(),
            },
            cosignature: cosign(),
        })
    } else {
        Ok(Verdict::Fork {
            reason: format!(
                "the log of size {} does not extend the witnessed log of size {}: entries were changed or removed",
                offered.size, head.size
            ),
            offered,
        })
    }
}

#[cfg(test)]
mod tests {
    use evidence::{ApplianceKey, MerkleTree, leaf_hash};

    use super::*;

    struct Log {
        key: ApplianceKey,
        tree: MerkleTree,
    }

    impl Log {
        fn new(seed: u8) -> Log {
            Log {
                key: ApplianceKey::from_seed(&[seed; 32]),
                tree: MerkleTree::new(),
            }
        }

        fn append(&mut self, n: usize, tag: &str) {
            for i in 0..n {
                self.tree.push(leaf_hash(format!("{tag}-{i}").as_bytes()));
            }
        }

        fn checkpoint(&self) -> String {
            Checkpoint {
                origin: self.key.origin().to_owned(),
                size: self.tree.len(),
                root: self.tree.root(),
            }
            .sign(&self.key)
        }

        fn proof(&self, old: u64) -> Vec<[u8; 32]> {
            self.tree.consistency_proof(old, self.tree.len()).unwrap()
        }

        /// Judges this log's checkpoint against `head` with a proof from `from` to it.
        fn judge(
            &self,
            head: Option<&Head>,
            from: u64,
            proof: &[[u8; 32]],
            now: u64,
        ) -> Result<Verdict, WitnessError> {
            judge(
                &self.key.verifier(),
                head,
                &self.checkpoint(),
                from,
                proof,
                &witness(),
                now,
            )
        }
    }

    fn witness() -> WitnessKey {
        WitnessKey::from_seed("central.example/witness", &[9; 32]).unwrap()
    }

    fn head_of(verdict: Verdict) -> (Head, String) {
        match verdict {
            Verdict::Cosign { head, cosignature } => (head, cosignature),
            other => panic!("expected a cosignature, got {other:?}"),
        }
    }

    #[test]
    fn an_extending_log_is_cosigned_and_the_cosignature_verifies() {
        let mut log = Log::new(1);
        log.append(5, "a");
        let (head, line) = head_of(log.judge(None, 0, &[], 100).unwrap());
        assert_eq!(head.size, 5);
        let cosigned = format!("{}{line}", log.checkpoint());
        assert_eq!(witness().verifier().verify(&cosigned).unwrap().time, 100);
        log.append(7, "b");
        let (next, _) = head_of(log.judge(Some(&head), 5, &log.proof(5), 200).unwrap());
        assert_eq!(next.size, 12);
        // A retried push of the same checkpoint is cosigned again, head unchanged.
        assert!(matches!(
            log.judge(Some(&next), 12, &[], 300).unwrap(),
            Verdict::Repeat { .. }
        ));
    }

    #[test]
    fn a_rewritten_history_is_a_fork_whatever_proof_comes_with_it() {
        let mut honest = Log::new(1);
        honest.append(5, "a");
        let (head, _) = head_of(honest.judge(None, 0, &[], 1).unwrap());
        // The same key signs a log whose first entries differ (the site rewrote its evidence).
        let mut rewritten = Log::new(1);
        rewritten.append(5, "forged");
        rewritten.append(3, "b");
        let verdict = rewritten
            .judge(Some(&head), 5, &rewritten.proof(5), 2)
            .unwrap();
        assert!(
            matches!(&verdict, Verdict::Fork { reason, .. } if reason.contains("does not extend")),
            "{verdict:?}"
        );
        // Same size, other root.
        let mut same_size = Log::new(1);
        same_size.append(5, "forged");
        let verdict = same_size.judge(Some(&head), 5, &[], 3).unwrap();
        assert!(
            matches!(&verdict, Verdict::Fork { reason, .. } if reason.contains("two different logs")),
            "{verdict:?}"
        );
        // A proof that claims to start at the head but does not prove it: not cosigned.
        let mut extended = Log::new(1);
        extended.append(5, "a");
        extended.append(3, "b");
        let wrong = extended.proof(4);
        assert!(matches!(
            extended.judge(Some(&head), 5, &wrong, 4).unwrap(),
            Verdict::Fork { .. }
        ));
        // A proof from another size than the head is a protocol error to retry, not a fork.
        assert_eq!(
            extended.judge(Some(&head), 4, &wrong, 4).unwrap_err(),
            WitnessError::ProofFromWrongSize { from: 4, head: 5 }
        );
        assert!(matches!(
            extended
                .judge(Some(&head), 5, &extended.proof(5), 4)
                .unwrap(),
            Verdict::Cosign { .. }
        ));
    }

    #[test]
    fn stale_foreign_and_malformed_checkpoints_are_refused() {
        let w = witness();
        let mut log = Log::new(1);
        log.append(5, "a");
        let old = log.checkpoint();
        log.append(5, "b");
        let (head, _) = head_of(log.judge(None, 0, &[], 1).unwrap());
        assert_eq!(
            judge(&log.key.verifier(), Some(&head), &old, 10, &[], &w, 2).unwrap_err(),
            WitnessError::Stale {
                offered: 5,
                head: 10
            }
        );
        // Signed by another appliance's key.
        let mut other = Log::new(2);
        other.append(20, "x");
        assert!(matches!(
            judge(
                &log.key.verifier(),
                Some(&head),
                &other.checkpoint(),
                10,
                &[],
                &w,
                3
            ),
            Err(WitnessError::Invalid(_))
        ));
        assert!(matches!(
            judge(&log.key.verifier(), None, "not a note", 0, &[], &w, 3),
            Err(WitnessError::Invalid(_))
        ));
        assert_eq!(
            log.judge(None, 0, &[[0; 32]; 129], 3).unwrap_err(),
            WitnessError::ProofTooLong(129)
        );
    }
}
