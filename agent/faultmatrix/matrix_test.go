package faultmatrix

import (
	"errors"
	"strings"
	"testing"
)

func TestReplaceKeepsOutside(t *testing.T) {
	doc := "# Title\n\nintro\n" + BeginMarker + "\nold | table\n" + EndMarker + "\n\n## After\ntext\n"
	table := Render([]Row{{Fault: "a | b", Expected: "x\ny", Result: Pass, Date: "2025-01-02"}})
	out, err := Replace([]byte(doc), table)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nintro\n" + BeginMarker + "\n" + table + EndMarker + "\n\n## After\ntext\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if !strings.Contains(table, `a \| b`) || strings.Contains(table, "x\ny") {
		t.Errorf("cells not escaped: %s", table)
	}
	again, _ := Replace(out, table)
	if string(again) != string(out) {
		t.Error("Replace is not idempotent")
	}
}

func TestReplaceNoMarkers(t *testing.T) {
	for _, doc := range []string{"nothing", BeginMarker + " but no end", EndMarker + " before " + BeginMarker} {
		if _, err := Replace([]byte(doc), "t"); !errors.Is(err, ErrNoMarkers) {
			t.Errorf("%q: err %v, want ErrNoMarkers", doc, err)
		}
	}
}
