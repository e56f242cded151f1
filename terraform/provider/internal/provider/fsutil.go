package provider

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// emptyParentLevels bounds how far Delete climbs when pruning directories it
// may have created, so a stray delete never walks up to / or $HOME.
const emptyParentLevels = 3

// normalizeJSON parses text as a single JSON value and re-encodes it with
// sorted object keys, two-space indent and a trailing newline.
func normalizeJSON(text []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	// UseNumber keeps numbers as written; float64 would silently round large
	// integers (ids, byte counts) and the file would no longer match the input.
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// The file is read by people and tools, not embedded in HTML: keep <, >
	// and & as they are.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil { // Encode sorts map keys and adds "\n".
		return nil, err
	}
	return buf.Bytes(), nil
}

// jsonEqual reports whether a and b are both valid JSON with the same meaning.
func jsonEqual(a, b []byte) bool {
	na, errA := normalizeJSON(a)
	nb, errB := normalizeJSON(b)
	return errA == nil && errB == nil && bytes.Equal(na, nb)
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// tempName is where writeFileAtomic stages name: one fixed name per file, so a
// write killed halfway (the engine stops the providers a crashed run left
// running) leaves at most this file, and the next write of name reuses it.
// Terraform and OpenTofu never run two operations on one resource at once.
func tempName(name string) string {
	return filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp")
}

// writeFileAtomic writes data to name via a temporary file in the same
// directory and a rename, so readers never see a half-written file.
func writeFileAtomic(name string, data []byte, perm fs.FileMode) error {
	if err := ensureParent(name); err != nil {
		return err
	}
	tmp, err := os.OpenFile(tempName(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	// Removing after a successful rename fails harmlessly.
	defer os.Remove(tmp.Name())

	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// removeFile deletes name (a missing file is already deleted) and then prunes
// parent directories that are left empty, up to emptyParentLevels of them.
func removeFile(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_ = os.Remove(tempName(name)) // what a killed write left, if anything
	dir := filepath.Dir(name)
	for i := 0; i < emptyParentLevels && dir != filepath.Dir(dir); i++ {
		// os.Remove refuses a non-empty directory, which is exactly where to stop.
		if err := os.Remove(dir); err != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// ensureParent creates the parent directories of name.
func ensureParent(name string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("creating parent directory: %w", err)
	}
	return nil
}

// simulateLatency makes a create, update or delete take ENGINE_LOCAL_LATENCY_S seconds, like a
// cloud API, so demos and crash tests can interrupt a run in the middle (the same knob as the
// Pulumi local target's).
func simulateLatency() {
	if s := os.Getenv("ENGINE_LOCAL_LATENCY_S"); s != "" {
		if d, err := time.ParseDuration(s + "s"); err == nil && d > 0 && d < time.Hour {
			time.Sleep(d)
		}
	}
}
