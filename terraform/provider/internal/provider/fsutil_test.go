package provider

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNormalizeJSON(t *testing.T) {
	got, err := normalizeJSON([]byte(`{"b":[1,"<x>"],"a":12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": 12345678901234567890,\n  \"b\": [\n    1,\n    \"<x>\"\n  ]\n}\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []string{``, `{`, `{} {}`, `not json`} {
		if _, err := normalizeJSON([]byte(bad)); err == nil {
			t.Errorf("normalizeJSON(%q) accepted invalid JSON", bad)
		}
	}
}

func TestObservedContent(t *testing.T) {
	prior := `{"a":1,"b":2}`
	cases := map[string]string{
		"{\n  \"b\": 2,\n  \"a\": 1\n}\n": prior,                             // same meaning: keep the configured string
		`{"a":1,"b":3}`:                   "{\n  \"a\": 1,\n  \"b\": 3\n}\n", // drift: normalized disk content
		"not json\n":                      "not json\n",                      // unparsable: raw text
	}
	for disk, want := range cases {
		if got := observedContent([]byte(disk), prior); got != want {
			t.Errorf("observedContent(%q) = %q, want %q", disk, got, want)
		}
	}
}

func TestHasDotDot(t *testing.T) {
	for p, want := range map[string]bool{"/a/../b": true, "/a/..": true, "/a/..b/c": false, "/a/b": false} {
		if got := hasDotDot(p); got != want {
			t.Errorf("hasDotDot(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestWriteAndRemovePrunesEmptyParents(t *testing.T) {
	root := t.TempDir()
	name := filepath.Join(root, "a", "b", "c", "doc.json")
	if err := writeFileAtomic(name, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeFile(name); err != nil {
		t.Fatal(err)
	}
	// c, b and a are pruned (three levels); root itself must survive.
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Fatalf("empty parent a was left behind: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("pruned past three levels: %v", err)
	}
	if err := removeFile(name); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
}

func TestAWriteKilledHalfwayLeavesNothingOnceTheFileIsWrittenOrRemoved(t *testing.T) {
	root := t.TempDir()
	name := filepath.Join(root, "net", "subnet.json")
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	// what a provider stopped between creating its temporary file and the rename leaves behind
	if err := os.WriteFile(tempName(name), []byte("{\"half\""), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(name, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); string(got) != "{}\n" {
		t.Fatalf("file content %q", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(name))
	if len(entries) != 1 {
		t.Fatalf("left next to the file: %v", entries)
	}
	if err := os.WriteFile(tempName(name), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeFile(name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "net")); !os.IsNotExist(err) {
		t.Fatalf("a killed write's temporary file kept the directory: %v", err)
	}
}
