package state

import "testing"

// TestUpdate: Update publishes fn's changes to a clone; a reader holding
// the snapshot from before keeps it unchanged.
func TestUpdate(t *testing.T) {
	var st State
	before := st.Load()
	st.Update(func(s *Snapshot) {
		s.Credentials["sap"] = &Credential{Name: "sap", Store: "prod", Seq: 1}
		s.KeyProblem = "locked"
	})
	after := st.Load()
	if after == before || len(before.Credentials) != 0 || before.KeyProblem != "" {
		t.Fatalf("the snapshot read before the update changed: %+v", before)
	}
	if after.Credentials["sap"] == nil || after.KeyProblem != "locked" {
		t.Fatalf("the update was not published: %+v", after)
	}
}
