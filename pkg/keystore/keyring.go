package keystore

import (
	"errors"
	"fmt"
	"time"

	gokeyring "github.com/zalando/go-keyring"
)

// KeyringMode selects how the Store uses the OS keyring.
type KeyringMode int

// Keyring modes.
const (
	// ModeAuto uses the keyring while it answers; the first failure warns once
	// and the Store works from files only afterwards.
	ModeAuto KeyringMode = iota
	// ModeOn makes an unreachable keyring an error.
	ModeOn
	// ModeOff never touches the keyring.
	ModeOff
)

// ParseKeyringMode parses "auto", "on" or "off".
func ParseKeyringMode(s string) (KeyringMode, error) {
	switch s {
	case "auto", "":
		return ModeAuto, nil
	case "on":
		return ModeOn, nil
	case "off":
		return ModeOff, nil
	}
	return ModeAuto, fmt.Errorf("invalid keyring mode %q (want auto, on or off)", s)
}

func (m KeyringMode) String() string {
	switch m {
	case ModeOn:
		return "on"
	case ModeOff:
		return "off"
	}
	return "auto"
}

// Keyring is a minimal secret store. Implementations map a missing item to
// ErrNotFound and an unreachable backend to ErrKeyringUnavailable.
type Keyring interface {
	Get(user string) (string, error)
	Set(user, value string) error
	Delete(user string) error
}

// DefaultKeyringTimeout bounds every OS keyring call.
const DefaultKeyringTimeout = 3 * time.Second

type osKeyring struct {
	service string
	timeout time.Duration
}

// NewOSKeyring returns the OS keyring (Secret Service, macOS Keychain, Windows
// Credential Manager) for service. Every call runs under timeout (0 means
// DefaultKeyringTimeout); a call that does not answer in time fails with
// ErrKeyringUnavailable (its goroutine is abandoned).
func NewOSKeyring(service string, timeout time.Duration) Keyring {
	if timeout <= 0 {
		timeout = DefaultKeyringTimeout
	}
	return &osKeyring{service: service, timeout: timeout}
}

func (k *osKeyring) Get(user string) (string, error) {
	var val string
	err := k.run("get", user, func() (err error) {
		val, err = gokeyring.Get(k.service, user)
		return err
	})
	return val, err
}

func (k *osKeyring) Set(user, value string) error {
	return k.run("set", user, func() error { return gokeyring.Set(k.service, user, value) })
}

func (k *osKeyring) Delete(user string) error {
	return k.run("delete", user, func() error { return gokeyring.Delete(k.service, user) })
}

func (k *osKeyring) run(op, user string, fn func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	t := time.NewTimer(k.timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return mapKeyringErr(op, k.service, user, err)
	case <-t.C:
		return fmt.Errorf("keyring %s %s/%s: %w: no answer within %s", op, k.service, user, ErrKeyringUnavailable, k.timeout)
	}
}

func mapKeyringErr(op, service, user string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gokeyring.ErrNotFound):
		return fmt.Errorf("keyring %s %s/%s: %w", op, service, user, ErrNotFound)
	case errors.Is(err, gokeyring.ErrSetDataTooBig):
		return fmt.Errorf("keyring %s %s/%s: %w", op, service, user, err)
	}
	return fmt.Errorf("keyring %s %s/%s: %w: %w", op, service, user, ErrKeyringUnavailable, err)
}
