package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/rotate"
)

// keyListOptions are the inputs of `piauth key list`.
type keyListOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)
	Now   func() time.Time

	JSON bool
}

// keyListItem is one element of `piauth key list --json`. Field names are
// part of piauth's interface (documented in the README); never a whole token.
type keyListItem struct {
	Index          int            `json:"index"` // 1-based
	Fingerprint    string         `json:"fingerprint"`
	Masked         string         `json:"masked"`
	Kind           string         `json:"kind"` // oauth | api
	Label          string         `json:"label"`
	Account        string         `json:"account"`
	Active         bool           `json:"active"`
	State          keystore.State `json:"state"`       // active | ready | cooling | needs-reauth (keystore.Pool.Status)
	Reason         string         `json:"reason"`      // one line: why the key is in its state, or why rotation skips it; "" when nothing to add
	Utilization    *float64       `json:"utilization"` // highest unified-window utilisation last reported (a fraction; null before any answer)
	CooldownUntil  *time.Time     `json:"cooldown_until"`
	CooldownReason string         `json:"cooldown_reason"`
	NeedsReauth    bool           `json:"needs_reauth"`
	CanRefresh     bool           `json:"can_refresh"`
	ExpiresAt      *time.Time     `json:"expires_at"`
	Expired        bool           `json:"expired"` // an OAuth key past its expiry
	InKeyring      bool           `json:"in_keyring"`
}

func newKeyListCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:    "list",
		Aliases: []string{"ls"},
		Usage:   "list the pooled keys (masked) with their state",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array (index, fingerprint, masked, kind, label, active, state, cooldown_until, in_keyring, …)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			return keyListRun(c.Context, &keyListOptions{IO: f.IO, Store: f.Store, Now: f.Now, JSON: c.Bool("json")})
		},
	}
}

// keyListRun prints the pool as a table or as JSON.
func keyListRun(_ context.Context, opts *keyListOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	p, err := store.Pool()
	if err != nil {
		return err
	}
	// One keyring read for the whole pool, not one per key.
	inKeyring, keyringOK, err := store.KeyringIndexErr()
	if err != nil { // --keyring on and the keyring does not answer
		return err
	}
	now := opts.Now()
	items := make([]keyListItem, len(p.Keys))
	for i := range p.Keys {
		items[i] = listItem(p, i, now)
		items[i].InKeyring = inKeyring[items[i].Fingerprint]
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	if len(items) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no keys in the pool (%s); add one with 'piauth key add'\n", store.PoolPath())
		return nil
	}
	cs := opts.IO.OutScheme()
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\t#\tFINGERPRINT\tKEY\tKIND\tLABEL\tKEYRING\tUTIL\tSTATE")
	for _, it := range items {
		mark := " "
		if it.Active {
			mark = "*"
		}
		label := termsafe.String(it.Label) // a hand-edited file must not drive the terminal
		if label == "" {
			label = "-"
		}
		kr := "-" // keyring off or unavailable
		if keyringOK {
			kr = "✗"
			if it.InKeyring {
				kr = "✓"
			}
		}
		// STATE is the last column: colour codes there cannot break alignment.
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, it.Index, it.Fingerprint, it.Masked, it.Kind, label, kr,
			utilText(it.Utilization), stateText(cs, p, it.Index-1, now))
	}
	return tw.Flush()
}

// listItem describes key i of p at time now (InKeyring is left to the
// caller). The state and its reason come from keystore.Pool.Status, the
// reason a ready key is passed over from rotate.SkipReason.
func listItem(p *keystore.Pool, i int, now time.Time) keyListItem {
	tok := p.Keys[i]
	st := p.States[keystore.Fingerprint(tok)]
	if st == nil {
		st = &keystore.KeyState{}
	}
	status := p.Status(i, now)
	it := keyListItem{
		Index:       i + 1,
		Fingerprint: keystore.Fingerprint(tok),
		Masked:      keystore.Mask(tok),
		Kind:        string(keystore.KindOf(tok)),
		Label:       st.Label,
		Account:     st.Account,
		Active:      i == p.ActiveIndex(),
		State:       status.State,
		Reason:      status.Reason,
		NeedsReauth: status.State == keystore.StateNeedsReauth,
		CanRefresh:  st.Refresh != "",
	}
	if r := rotate.SkipReason(p, i, now); r != "" {
		it.Reason = r
	}
	if st.UnifiedStatus != "" || st.Utilization != 0 {
		u := st.Utilization
		it.Utilization = &u
	}
	if st.Expires > 0 {
		t := time.UnixMilli(st.Expires).UTC()
		it.ExpiresAt = &t
		it.Expired = keystore.ExpiredAt(st.Expires, now)
	}
	if st.CooldownUntil.After(now) { // shown even when another state wins (needs-reauth)
		t := st.CooldownUntil.UTC()
		it.CooldownUntil = &t
		it.CooldownReason = st.CooldownReason
	}
	return it
}

// utilText renders a utilisation fraction as a percentage, "-" when unknown.
func utilText(u *float64) string {
	if u == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100**u)
}

// stateText renders key i's state for a table, the same words as every other
// command (KeyStatus.Describe), coloured when cs enables colour, with the
// reason rotation passes a ready key over.
func stateText(cs Scheme, p *keystore.Pool, i int, now time.Time) string {
	status := p.Status(i, now)
	text := status.Describe(now)
	if r := rotate.SkipReason(p, i, now); r != "" {
		text += " (" + r + ")"
	}
	switch status.State {
	case keystore.StateNeedsReauth:
		return cs.Red(text)
	case keystore.StateCooling:
		return cs.Yellow(text)
	case keystore.StateActive:
		return cs.Green(text)
	}
	return text
}
