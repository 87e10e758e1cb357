// Package engine is personad's deterministic core: it turns Persona's
// inquiry webhooks, delivered at least once and in any order, into one
// correct state per inquiry.
//
// The pieces, in the order a delivery meets them:
//
//   - Parse reads a raw webhook body (kebab-case, snake_case or camelCase
//     keys) into an Event, or says which field is wrong (*ParseError).
//   - The lifecycle is an explicit state machine built once with
//     github.com/qmuntal/stateless: Transition and Path answer what it
//     permits, GraphDOT and GraphMermaid draw it.
//   - Fold computes an inquiry's projection (Inquiry) from its distinct
//     events ordered by created-at, then lifecycle rank, then id; each event
//     gets an Outcome (applied, inferred, unchanged, rejected, unknown) and
//     anything odd is recorded as an Anomaly. The result does not depend on
//     the order events arrived in.
//   - Scrub removes personal data from a stored body as Persona's redaction
//     does. Redacting an inquiry scrubs its events and those of the
//     objects that belong to it (Event.RelatedInquiryID): its
//     verifications, reports and sessions hold the same person's data.
//   - Engine ties them to a Store: Ingest stores each event exactly once,
//     folds it (one step when it arrives in order, a re-fold when it is
//     late), and reports a Result; Subscribe and Changed announce committed
//     changes.
//
// The package reads no clock and does no I/O of its own: times come in as
// values, and storage is behind the Store interface. MemoryStore keeps
// everything in memory; package store keeps it in SQLite.
package engine
