package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// ServiceFileName is the optional override of the service data in piauth's
// config dir (the same shape as pkg/stream/anthropic.json, any subset).
const ServiceFileName = "anthropic.json"

// Service is what piauth knows of Anthropic's service for this run: the data
// built in (models, prices, aliases, betas, the Claude Code version), with
// an override file laid over it — PIAUTH_SERVICE_FILE, else
// $XDG_CONFIG_HOME/piauth/anthropic.json when it exists — and
// PIAUTH_CLAUDE_CODE_VERSION over the version. Every value the service may
// change again is data with an override, not a constant to rebuild for.
func (f *Factory) Service() (*stream.Service, error) {
	if f.service != nil {
		return f.service, nil
	}
	svc := stream.Builtin()
	path, explicit := f.Getenv("PIAUTH_SERVICE_FILE"), true
	if path == "" {
		explicit = false
		if dir, err := keystore.ResolveConfigDir(f.Getenv); err == nil {
			path = filepath.Join(dir, ServiceFileName)
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			over, err := stream.ParseService(data)
			if err == nil {
				svc, err = svc.Merge(over)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		case explicit || !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("service data: %w", err)
		}
	}
	if v := f.Getenv("PIAUTH_CLAUDE_CODE_VERSION"); v != "" {
		if nv := svc.WithVersion(v); nv.Version() != svc.Version() || stream.NewerVersion(v, "0") {
			svc = nv
		} else {
			return nil, usagef("PIAUTH_CLAUDE_CODE_VERSION %q is not a version (e.g. 2.1.300)", v)
		}
	}
	f.service = svc
	return svc, nil
}

// LearnedPath is learned.json in piauth's state dir ($PIAUTH_STATE_DIR,
// else $XDG_STATE_HOME/piauth, else ~/.local/state/piauth): what piauth
// learnt from the service, shared by its processes.
func (f *Factory) LearnedPath() (string, error) {
	dir, err := keystore.ResolveStateDir(f.Getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, keystore.LearnedFileName), nil
}
