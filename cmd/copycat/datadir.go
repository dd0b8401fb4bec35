package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// identityFile records, in a member's data directory, which cluster and
// member the directory belongs to. The log itself does not say, so without
// it a member could start on another member's (or another cluster's) log.
const identityFile = "copycat-member.json"

type identity struct {
	ClusterID string `json:"cluster_id"`
	MemberID  uint64 `json:"member_id"`
}

// prepareDataDir creates dir if needed, checks that it is writable and
// belongs to this cluster and member; the identity is recorded after the first
// successful start (recordIdentity). fresh reports whether the directory
// held no state; record whether its identity is not recorded yet.
func prepareDataDir(dir, clusterID string, id uint64) (fresh, record bool, err error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return false, false, fmt.Errorf("data directory %s is not a directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, false, fmt.Errorf("cannot create the data directory %s: %w", dir, unwrapPath(err))
	}
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var have identity
		if err := json.Unmarshal(b, &have); err != nil || have.MemberID == 0 || have.ClusterID == "" {
			return false, false, fmt.Errorf("data directory %s has a damaged %s; restore it or start from an empty directory", dir, identityFile)
		}
		if have.ClusterID != clusterID || have.MemberID != id {
			return false, false, fmt.Errorf("data directory %s belongs to member %d of cluster %q, not member %d of cluster %q",
				dir, have.MemberID, have.ClusterID, id, clusterID)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, false, fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, false, fmt.Errorf("cannot read the data directory %s: %w", dir, unwrapPath(err))
	}
	fresh = true
	for _, e := range entries {
		if e.Name() != identityFile {
			fresh = false
		}
	}
	probe, err := os.CreateTemp(dir, ".copycat-write-test-*")
	if err != nil {
		return false, false, fmt.Errorf("data directory %s is not writable: %w", dir, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return fresh, b == nil, nil
}

// recordIdentity writes the identity file of a data directory, once the
// member has started on it.
func recordIdentity(dir, clusterID string, id uint64) error {
	if err := writeIdentity(filepath.Join(dir, identityFile), identity{ClusterID: clusterID, MemberID: id}); err != nil {
		return fmt.Errorf("cannot record the member's identity in %s: %w", dir, unwrapPath(err))
	}
	return nil
}

// writeIdentity writes the identity file atomically and durably.
func writeIdentity(path string, id identity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// unwrapPath drops the operation and path of a *fs.PathError, which the
// messages above already name.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
