package engine

// Forget says how much of an object's data personad must forget.
type Forget int

const (
	// ForgetNone: the object is not redacted, nor is anything it belongs to.
	ForgetNone Forget = iota
	// ForgetKeepReference: scrub with Scrub, which keeps an inquiry's
	// reference-id, as Persona's own direct inquiry redaction does.
	ForgetKeepReference
	// ForgetAll: scrub with ScrubAll, which nulls reference-id too, as
	// Persona does when the account (or another owner) is redacted.
	ForgetAll
)

// Link says that Object belongs to Owner: a verification to its inquiry,
// an inquiry to its account, a case to the inquiries it names.
type Link struct {
	Object, Owner string
}

// Forgotten is an object whose forget mode rose (see Tx.Forget).
type Forgotten struct {
	ID   string
	Mode Forget
}

// scrubFor returns the scrub function of a mode.
func scrubFor(m Forget) func([]byte) ([]byte, error) {
	if m == ForgetAll {
		return ScrubAll
	}
	return Scrub
}
