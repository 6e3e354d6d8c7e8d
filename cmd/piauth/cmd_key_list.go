package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keyListOptions are the inputs of `piauth key list`.
type keyListOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)
	Now   func() time.Time

	JSON bool
}

// Key states shown by `key list` (the "state" field of --json).
const (
	stateActive      = "active"
	stateReady       = "ready"
	stateCooling     = "cooling"
	stateNeedsReauth = "needs-reauth"
)

// keyListItem is one element of `piauth key list --json`. Field names are
// part of piauth's interface (documented in the README); never a whole token.
type keyListItem struct {
	Index          int        `json:"index"` // 1-based
	Fingerprint    string     `json:"fingerprint"`
	Masked         string     `json:"masked"`
	Kind           string     `json:"kind"` // oauth | api
	Label          string     `json:"label"`
	Account        string     `json:"account"`
	Active         bool       `json:"active"`
	State          string     `json:"state"` // active | ready | cooling | needs-reauth
	CooldownUntil  *time.Time `json:"cooldown_until"`
	CooldownReason string     `json:"cooldown_reason"`
	NeedsReauth    bool       `json:"needs_reauth"`
	CanRefresh     bool       `json:"can_refresh"`
	ExpiresAt      *time.Time `json:"expires_at"`
	Expired        bool       `json:"expired"` // an OAuth key past its expiry
	InKeyring      bool       `json:"in_keyring"`
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
	fmt.Fprintln(tw, "\t#\tKEY\tKIND\tLABEL\tKEYRING\tSTATE")
	for _, it := range items {
		mark := " "
		if it.Active {
			mark = "*"
		}
		label := it.Label
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
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", mark, it.Index, it.Masked, it.Kind, label, kr, stateText(cs, it, now))
	}
	return tw.Flush()
}

// listItem describes key i of p at time now (InKeyring is left to the caller).
func listItem(p *keystore.Pool, i int, now time.Time) keyListItem {
	tok := p.Keys[i]
	st := p.States[keystore.Fingerprint(tok)]
	if st == nil {
		st = &keystore.KeyState{}
	}
	it := keyListItem{
		Index:       i + 1,
		Fingerprint: keystore.Fingerprint(tok),
		Masked:      keystore.Mask(tok),
		Kind:        string(keystore.KindOf(tok)),
		Label:       st.Label,
		Account:     st.Account,
		Active:      i == p.Active,
		NeedsReauth: st.NeedsReauth,
		CanRefresh:  st.Refresh != "",
	}
	if st.Expires > 0 {
		t := time.UnixMilli(st.Expires).UTC()
		it.ExpiresAt = &t
		it.Expired = !now.Before(t)
	}
	cooling := st.CooldownUntil.After(now)
	if cooling {
		t := st.CooldownUntil.UTC()
		it.CooldownUntil = &t
		it.CooldownReason = st.CooldownReason
	}
	switch {
	case st.NeedsReauth:
		it.State = stateNeedsReauth
	case cooling:
		it.State = stateCooling
	case it.Active:
		it.State = stateActive
	default:
		it.State = stateReady
	}
	return it
}

// stateText renders a state for the table, coloured when cs enables colour.
func stateText(cs Scheme, it keyListItem, now time.Time) string {
	switch it.State {
	case stateNeedsReauth:
		return cs.Red("needs-reauth")
	case stateCooling:
		return cs.Yellow(fmt.Sprintf("cooling until %s (%s left)", clockTime(*it.CooldownUntil, now), shortDuration(it.CooldownUntil.Sub(now))))
	case stateActive:
		return cs.Green("active")
	}
	return "ready"
}

// clockTime formats t in local time: the time of day when it falls on now's
// day, else date and time.
func clockTime(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

// shortDuration renders d as "2h5m", "12m" or "40s" (minutes and seconds
// rounded up, so a cooldown never shows as over early).
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int((d+time.Minute-1)/time.Minute))
	}
	return fmt.Sprintf("%ds", int((d+time.Second-1)/time.Second))
}
