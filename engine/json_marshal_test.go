package engine

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// referenceJSON is what MarshalJSON wrote through encoding/json before it
// was written by hand; stored projections were written so, and are
// compared byte for byte.
func referenceJSON(inq *Inquiry) []byte {
	j := inquiryJSON{
		ID: inq.ID, Status: jsonString(inq.Status), Decision: jsonString(inq.Decision),
		Redacted: inq.Redacted, RedactedAt: jsonTime(inq.RedactedAt),
		ReferenceID: jsonString(inq.ReferenceID), AccountID: jsonString(inq.AccountID),
		TemplateID: jsonString(inq.TemplateID), Tags: inq.Tags,
		CreatedAt: jsonTime(inq.CreatedAt), UpdatedAt: jsonTime(inq.UpdatedAt),
		LastEventID: jsonString(inq.LastEventID), EventCount: inq.EventCount,
		Anomalies: make([]anomalyJSON, len(inq.Anomalies)),
	}
	for i, a := range inq.Anomalies {
		j.Anomalies[i] = anomalyJSON{a.EventID, a.Kind, jsonString(a.From), jsonString(a.To)}
	}
	b, err := json.Marshal(j)
	if err != nil {
		panic(err)
	}
	return b
}

func checkMarshal(t *testing.T, inq *Inquiry) {
	t.Helper()
	got, err := inq.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceJSON(inq); !bytes.Equal(got, want) {
		t.Fatalf("MarshalJSON of %+v\n got %s\nwant %s", inq, got, want)
	}
	var back Inquiry
	if err := back.UnmarshalJSON(got); err != nil {
		t.Fatalf("UnmarshalJSON(%s): %v", got, err)
	}
}

func TestInquiryMarshalMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2024, 3, 15, 18, 30, 0, 123456789, time.FixedZone("x", 3600))
	for _, inq := range []*Inquiry{
		{},
		{ID: "inq_1", Status: StatusApproved, Decision: StatusApproved, EventCount: 3, UpdatedAt: at, CreatedAt: at, Tags: []string{}},
		{ID: "inq_2", Redacted: true, RedactedAt: at, ReferenceID: "user-1", AccountID: "act_1", TemplateID: "itmpl_1",
			Tags:        []string{"vip", "a<b>&c", `quote"back\slash`, "tab\there", "é", "\u2028", "\xff"},
			LastEventID: "evt_1", Anomalies: []Anomaly{{EventID: "evt_2", Kind: AnomalyRejected, From: StatusApproved, To: StatusNeedsReview}, {Kind: AnomalyUnknownEvent}}},
		{ID: "ctl\x00\x1f\x7f", ReferenceID: "<script>", EventCount: -1},
	} {
		checkMarshal(t, inq)
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", "_", "-", "<", ">", "&", `"`, `\`, "\n", "\x00", "é", "\u2028", "\u2029", "\xff", "€", " "}
	str := func() string {
		var b []byte
		for range r.IntN(6) {
			b = append(b, alphabet[r.IntN(len(alphabet))]...)
		}
		return string(b)
	}
	for range 2000 {
		inq := &Inquiry{ID: str(), Status: Status(str()), Decision: Status(str()), Redacted: r.IntN(2) == 0,
			ReferenceID: str(), AccountID: str(), TemplateID: str(), LastEventID: str(), EventCount: r.IntN(1000)}
		if r.IntN(2) == 0 {
			inq.RedactedAt = at.Add(time.Duration(r.Int64N(1e15)))
		}
		if r.IntN(3) > 0 {
			inq.Tags = []string{}
			for range r.IntN(3) {
				inq.Tags = append(inq.Tags, str())
			}
		}
		for range r.IntN(3) {
			inq.Anomalies = append(inq.Anomalies, Anomaly{EventID: str(), Kind: str(), From: Status(str()), To: Status(str())})
		}
		checkMarshal(t, inq)
	}
}

func FuzzInquiryMarshal(f *testing.F) {
	f.Add("inq_1", "approved", "vip", "user-1", int64(0))
	f.Add("a<b", "\u2028", "\xff", "é", int64(1700000000000))
	f.Fuzz(func(t *testing.T, id, status, tag, ref string, ms int64) {
		inq := &Inquiry{ID: id, Status: Status(status), Tags: []string{tag}, ReferenceID: ref,
			Anomalies: []Anomaly{{EventID: id, Kind: tag, From: Status(status)}}}
		if ms != 0 {
			inq.UpdatedAt = time.UnixMilli(ms % 1e14)
		}
		checkMarshal(t, inq)
	})
}
