package redisstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/scrypt"

	"github.com/piauth/piauth/pkg/keystore"
)

// MinKeyLength is the shortest sealing passphrase accepted (in characters).
const MinKeyLength = 16

// Default scrypt cost (N=2^15, r=8, p=1: the parameters scrypt's paper
// recommends for interactive use, ≈ 50 ms and 32 MiB once per process).
const (
	DefaultScryptN = 1 << 15
	scryptR        = 8
	scryptP        = 1
)

// sealPrefix starts every sealed value: a version, then base64(nonce|ciphertext).
const sealPrefix = "v1."

// checkPlain is the known plaintext of the meta's check value: opening it
// tells a wrong key from a right one before any pool is read.
const checkPlain = "piauth store check v1"

// ErrShortKey means the sealing passphrase is shorter than MinKeyLength.
var ErrShortKey = fmt.Errorf("the store key must be at least %d characters", MinKeyLength)

// Passphrase returns the sealing passphrase: $PIAUTH_STORE_KEY, else the
// contents of $PIAUTH_STORE_KEY_FILE (a regular file of mode 0600 or
// stricter, trailing newline trimmed). Shorter than MinKeyLength characters
// is refused, and so is a key file readable by group or others.
func Passphrase(getenv func(string) string) (string, error) {
	key := getenv("PIAUTH_STORE_KEY")
	src := "PIAUTH_STORE_KEY"
	if key == "" {
		path := getenv("PIAUTH_STORE_KEY_FILE")
		if path == "" {
			return "", errors.New("a shared store needs a sealing key: set PIAUTH_STORE_KEY (at least 16 characters) or PIAUTH_STORE_KEY_FILE (a 0600 file holding it)")
		}
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("PIAUTH_STORE_KEY_FILE: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return "", fmt.Errorf("PIAUTH_STORE_KEY_FILE %s: mode %04o lets others read the key; chmod 600 it", path, perm)
		}
		data, err := keystore.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("PIAUTH_STORE_KEY_FILE: %w", err)
		}
		key, src = strings.TrimRight(string(data), "\r\n"), "PIAUTH_STORE_KEY_FILE "+path
	}
	if utf8.RuneCountInString(key) < MinKeyLength {
		return "", fmt.Errorf("%s: %w (it has %d)", src, ErrShortKey, utf8.RuneCountInString(key))
	}
	return key, nil
}

// kdf is the key-derivation record kept in the store's meta, so every machine
// derives the same key from the same passphrase.
type kdf struct {
	Name string `json:"kdf"` // "scrypt"
	N    int    `json:"n"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt string `json:"salt"` // base64
}

func newKDF(n int) (kdf, error) {
	if n <= 1 {
		n = DefaultScryptN
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return kdf{}, err
	}
	return kdf{Name: "scrypt", N: n, R: scryptR, P: scryptP, Salt: base64.StdEncoding.EncodeToString(salt)}, nil
}

// sealer seals and opens secrets with AES-256-GCM. Each value is bound to
// its purpose (the additional data: "token:<fingerprint>"), so a sealed
// value cannot be moved to another key or field unnoticed.
type sealer struct{ aead cipher.AEAD }

func (k kdf) sealer(pass string) (*sealer, error) {
	if k.Name != "scrypt" {
		return nil, fmt.Errorf("store meta: unknown key derivation %q", k.Name)
	}
	salt, err := base64.StdEncoding.DecodeString(k.Salt)
	if err != nil || len(salt) < 8 {
		return nil, errors.New("store meta: bad salt")
	}
	key, err := scrypt.Key([]byte(pass), salt, k.N, k.R, k.P, 32)
	if err != nil {
		return nil, fmt.Errorf("store meta: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain, purpose string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(plain), []byte(purpose))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// open opens a sealed value; a value that does not open (another key, or
// tampered with) wraps keystore.ErrWrongStoreKey.
func (s *sealer) open(sealed, purpose string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", fmt.Errorf("%s: not a sealed value", purpose)
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", fmt.Errorf("%s: not a sealed value", purpose)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return "", fmt.Errorf("%s: %w", purpose, keystore.ErrWrongStoreKey)
	}
	return string(plain), nil
}
