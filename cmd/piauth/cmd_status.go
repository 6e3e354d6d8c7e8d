package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
	"github.com/piauth/piauth/pkg/usage"
)

// statusOptions are the dependencies and flags of `piauth status`.
type statusOptions struct {
	IO     *IOStreams
	Store  *keystore.Store
	Source *rotate.Source
	Now    func() time.Time
	// Usage holds the cache of usage answers (status reads it; --check also
	// asks the endpoint through it). nil: no figures.
	Usage *usage.Fetcher
	// Service, HTTP and BaseURL check API keys with GET /v1/models (--check).
	Service *stream.Service

	JSON  bool
	Check bool
}

func newStatusCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the login, the key pool and the keyring (tokens masked)",
		Description: `Shows whether you are logged in and as whom, when the token expires, the key
pool with the active key (🔑 i/n, "(rotated)"), cooling and needs-login keys,
and the keyring backend. It only reads files: nothing is refreshed. Being
logged out is reported, not an error (exit 0); use 'piauth token' to test for
a usable credential. Each key shows its 5-hour and weekly figures from the
last 'piauth usage' answer (cached, no network). --check also asks, online,
whether the login and each key are accepted (the usage endpoint; GET
/v1/models for API keys) and exits 3 when the login is refused. --json
prints stable snake_case fields.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON (stable snake_case fields)"},
			&cli.BoolFlag{Name: "check", Usage: "verify the login and each key online; exit 3 if the login is refused"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("status takes no arguments")
			}
			src, err := f.Source()
			if err != nil {
				return err
			}
			opts := &statusOptions{IO: f.IO, Store: src.Store, Source: src, Now: f.Now, JSON: c.Bool("json"), Check: c.Bool("check")}
			if opts.Check {
				if opts.Usage, err = usageFetcher(f); err != nil {
					return err
				}
				if opts.Service, err = f.Service(); err != nil {
					return err
				}
			} else if path, err := usage.CachePath(f.Getenv); err == nil {
				opts.Usage = &usage.Fetcher{Cache: &usage.Cache{Path: path}}
			}
			return statusRun(c.Context, opts)
		},
	}
}

// statusJSON is `piauth status --json`. The field names are stable (README):
//
//	logged_in         bool    auth.json holds a Claude ("anthropic") credential
//	uses              string  where requests take their credential: "pool", "login" or "none"
//	auth              object  the login, null when logged out:
//	  type            string  "oauth" or "api_key"
//	  account         string  email of the account when known, else ""
//	  masked          string  masked token
//	  expires_at      string  RFC 3339 UTC expiry (pi's, 5 min early), "" for API keys
//	  expires_in_s    int     seconds until expiry, negative once expired, 0 for API keys
//	  expired         bool    an OAuth token past its expiry (refreshed on next use)
//	  pooled_as       int     1-based pool index of the same account, 0 when not pooled
//	pool              object  key-rotation.json:
//	  size            int     number of keys
//	  active          int     1-based index of the active key, 0 when empty
//	  rotated         bool    the seed's "(rotated)" mark
//	  rotation        bool    rotation is on (2 or more keys)
//	  indicator       string  "🔑 2/3" or "🔑 2/3 (rotated)", "" without rotation
//	  keys            array   one object per key, in pool order: the objects of
//	                          `piauth key list --json` (index, fingerprint, masked,
//	                          kind, label, account, active, state, reason,
//	                          utilization, cooldown_until, cooldown_reason,
//	                          needs_reauth, can_refresh, expires_at, expired,
//	                          in_keyring)
//	keyring           string  "off", "on (…)" or "unavailable: REASON"
//	store             string  only with a shared store: "redis://host:6379/0 (prefix piauth:{default}:)"
//	agent_dir         string  directory of auth.json and key-rotation.json
//	check             array   only with --check: one object per account asked
//	                          (the login first when it is not pooled, then the keys):
//	  index           int     1-based pool index, 0 for the login
//	  fingerprint     string  fingerprint of the token
//	  result          string  "ok", "refused", "unknown" (could not tell) or "skipped"
//	  error           string  why, "" when ok
type statusJSON struct {
	LoggedIn bool          `json:"logged_in"`
	Uses     string        `json:"uses"`
	Auth     *authStatus   `json:"auth"`
	Pool     poolStatus    `json:"pool"`
	Keyring  string        `json:"keyring"`
	Store    string        `json:"store,omitempty"` // the shared store holding the pool (PIAUTH_STORE); absent for key-rotation.json
	AgentDir string        `json:"agent_dir"`
	Check    []statusCheck `json:"check,omitempty"`

	usage   map[string]usage.Entry // cached usage answers by fingerprint (not in the JSON)
	now     time.Time
	loginFP string // fingerprint of the login's token, "" when logged out
}

type authStatus struct {
	Type       string `json:"type"`
	Account    string `json:"account"`
	Masked     string `json:"masked"`
	ExpiresAt  string `json:"expires_at"`
	ExpiresInS int64  `json:"expires_in_s"`
	Expired    bool   `json:"expired"`
	PooledAs   int    `json:"pooled_as"`
}

type poolStatus struct {
	Size      int           `json:"size"`
	Active    int           `json:"active"`
	Rotated   bool          `json:"rotated"`
	Rotation  bool          `json:"rotation"`
	Indicator string        `json:"indicator"`
	Keys      []keyListItem `json:"keys"` // the objects of `piauth key list --json`
}

// errNothingUsable is status's exit-3 result: the report was printed, and it
// says there is nothing to send a request with.
var errNothingUsable = fmt.Errorf("%w and no pooled key is usable", pkce.ErrNotLoggedIn)

// statusRun reads auth.json, the pool and the keyring state and reports them.
// It fails with errNothingUsable (exit 3, after the report) when no login
// and no usable pooled key exist.
func statusRun(ctx context.Context, opts *statusOptions) error {
	var checks []statusCheck
	if opts.Check {
		var err error
		if checks, err = checkOnline(ctx, opts); err != nil && !errors.Is(err, pkce.ErrNotLoggedIn) {
			return err
		}
	}
	now := opts.Now()
	st, err := collectStatus(opts.Source, now)
	if err != nil {
		return err
	}
	st.Check, st.now = checks, now
	if opts.Usage != nil {
		st.usage = opts.Usage.Cached()
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else {
		printStatus(opts.IO.Out, opts.IO.OutScheme(), st, now)
	}
	if !usable(st) {
		return &silentError{errNothingUsable}
	}
	if c := loginCheck(st); c != nil && c.Result == "refused" {
		return &silentError{fmt.Errorf("the login was refused: %s (%w)", c.Error, pkce.ErrNeedsLogin)}
	}
	return nil
}

// usable reports whether the report shows something a request can be sent
// with: a login, or a pooled key that is usable now or once its cooldown ends
// (a rate limit passes; a refused, disabled or revoked key does not).
func usable(st *statusJSON) bool {
	if st.LoggedIn {
		return true
	}
	for _, k := range st.Pool.Keys {
		if k.State.Usable() || k.State == keystore.StateCooling {
			return true
		}
	}
	return false
}

// collectStatus builds the report; only masked tokens leave it.
func collectStatus(src *rotate.Source, now time.Time) (*statusJSON, error) {
	mode, p, cred, err := src.Files()
	if err != nil {
		return nil, err
	}
	store := src.Store
	st := &statusJSON{LoggedIn: cred != nil, Uses: mode.String(), Keyring: store.KeyringState(), AgentDir: store.Dir()}
	if store.Backend() != nil {
		st.Store = store.Location()
	}
	st.Pool = poolStatus{Size: len(p.Keys), Rotated: p.Rotated, Rotation: len(p.Keys) >= 2, Keys: make([]keyListItem, 0, len(p.Keys))}
	if len(p.Keys) > 0 {
		st.Pool.Active = p.ActiveIndex() + 1
	}
	if mode == rotate.ModePool {
		st.Pool.Indicator = rotate.Indicator(st.Pool.Active, st.Pool.Size, p.Rotated)
	}
	inKeyring, _ := store.KeyringIndex()
	for i := range p.Keys {
		it := listItem(p, i, now)
		it.InKeyring = inKeyring[it.Fingerprint]
		st.Pool.Keys = append(st.Pool.Keys, it)
	}
	if cred != nil {
		a := &authStatus{Type: cred.Type, Masked: keystore.Mask(cred.Token())}
		st.loginFP = keystore.Fingerprint(cred.Token())
		if cred.Type == "oauth" {
			a.ExpiresAt = rfc3339Ms(cred.Expires)
			a.ExpiresInS = (cred.Expires - now.UnixMilli()) / 1000
			a.Expired = cred.Expired(now)
		}
		if raw := cred.Field(pkce.AccountField); raw != nil {
			_ = json.Unmarshal(raw, &a.Account) // a non-string value is ignored
		}
		if i := pkce.LinkedKey(p, cred); i >= 0 {
			a.PooledAs = i + 1
			if a.Account == "" {
				a.Account = p.State(i).Account
			}
		}
		st.Auth = a
	}
	return st, nil
}

func rfc3339Ms(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// printStatus renders the report for humans.
func printStatus(w io.Writer, cs Scheme, st *statusJSON, now time.Time) {
	if a := st.Auth; a != nil {
		who := ""
		if a.Account != "" {
			who = " as " + cs.Bold(termsafe.String(a.Account))
		}
		fmt.Fprintf(w, "%s Logged in%s (%s)\n", cs.Green("✓"), who, a.Type)
		fmt.Fprintf(w, "  token    %s\n", a.Masked)
		if a.ExpiresAt != "" {
			exp, _ := time.Parse(time.RFC3339, a.ExpiresAt)
			if a.Expired {
				fmt.Fprintf(w, "  expires  %s (%s); refreshed on next use\n", cs.Yellow("expired "+when.Duration(now.Sub(exp))+" ago"), a.ExpiresAt)
			} else {
				fmt.Fprintf(w, "  expires  in %s (%s)\n", when.Duration(exp.Sub(now)), a.ExpiresAt)
			}
		}
		if a.PooledAs > 0 {
			fmt.Fprintf(w, "  pooled   as key %d/%d\n", a.PooledAs, st.Pool.Size)
		}
		if a.PooledAs == 0 && st.Auth != nil {
			if fig := cachedFigure(st, st.loginFP); fig != "" {
				fmt.Fprintf(w, "  usage    %s\n", fig)
			}
		}
	} else {
		fmt.Fprintf(w, "%s Not logged in (run piauth login)\n", cs.Red("✗"))
	}

	switch p := st.Pool; {
	case p.Size == 0:
		fmt.Fprintln(w, "Key pool: empty")
	case st.Uses == rotate.ModeLogin.String():
		fmt.Fprintln(w, "Key pool: 1 key, not used: requests use the login (rotation needs 2 or more keys)")
	case !p.Rotation:
		fmt.Fprintf(w, "Key pool: 1 key, used for every request (no login), %s\n", cs.Bold(p.Indicator))
	default:
		fmt.Fprintf(w, "Key pool: %d keys, %s\n", p.Size, cs.Bold(p.Indicator))
	}
	for _, k := range st.Pool.Keys {
		mark := " "
		if k.Active {
			mark = "*"
		}
		line := fmt.Sprintf(" %s key %d  %s", mark, k.Index, k.Masked)
		if k.Label != "" {
			line += "  " + termsafe.String(k.Label)
		}
		if k.Account != "" {
			line += "  " + termsafe.String(k.Account)
		}
		if k.Utilization != nil {
			line += "  " + utilText(k.Utilization) + " used"
		}
		if fig := cachedFigure(st, k.Fingerprint); fig != "" {
			line += "  " + fig
		}
		fmt.Fprintln(w, line+"  "+keyStateText(cs, k, now))
	}
	fmt.Fprintf(w, "Keyring: %s\n", st.Keyring)
	if st.Store != "" {
		fmt.Fprintf(w, "Store: %s\n", st.Store)
	}
	printChecks(w, cs, st)
}

// keyStateText renders a key's state on status's key line: the same words as
// key list (KeyStatus.Describe), coloured.
func keyStateText(cs Scheme, k keyListItem, now time.Time) string {
	ks := keystore.KeyStatus{State: k.State, Reason: k.Reason}
	if k.State == keystore.StateCooling && k.CooldownUntil != nil {
		ks.Until = *k.CooldownUntil
	}
	text := ks.Describe(now)
	switch k.State {
	case keystore.StateNeedsReauth:
		return cs.Red(text)
	case keystore.StateCooling:
		return cs.Yellow(text)
	case keystore.StateActive, keystore.StateReady:
		return cs.Green(text)
	}
	return text
}

// cachedFigure is the last usage answer of the key fp, from the cache:
// "5h 72% · 7d 41% (usage 3m ago)"; "" when none is cached.
func cachedFigure(st *statusJSON, fp string) string {
	e, ok := st.usage[fp]
	if !ok || e.Report == nil {
		return ""
	}
	fig := usage.Short(e.Report)
	if fig == "" {
		return ""
	}
	return fig + " (usage " + when.Duration(st.now.Sub(e.FetchedAt)) + " ago)"
}
