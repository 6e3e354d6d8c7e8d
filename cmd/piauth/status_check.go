package main

import (
	"context"
	"fmt"
	"io"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/usage"
)

// statusCheck is the online verdict on one account (status --check).
type statusCheck struct {
	Index       int    `json:"index"`
	Fingerprint string `json:"fingerprint"`
	Result      string `json:"result"`
	Error       string `json:"error"`
}

// checkOnline asks, for the login and each key, whether the service accepts
// it: the usage endpoint for OAuth tokens (its answers go to the cache),
// GET /v1/models for API keys. It never marks or cools a key.
func checkOnline(ctx context.Context, opts *statusOptions) ([]statusCheck, error) {
	accts, err := usageAccounts(opts.Source, opts.Now())
	if err != nil {
		return nil, err
	}
	results := fetchUsage(ctx, opts.Usage, accts, true)
	out := make([]statusCheck, len(accts))
	for i, a := range accts {
		c := statusCheck{Index: a.Index, Fingerprint: a.Fingerprint, Result: "ok"}
		err := results[i].Err
		switch {
		case a.skip != "":
			c.Result, c.Error = "skipped", a.skip
			out[i] = c
			continue
		case a.API:
			err = checkAPIKey(ctx, opts, a)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case usage.IsRefused(err) || rotate.NeedsLogin(err):
			c.Result, c.Error = "refused", secret.MaskAll(err.Error())
		default:
			c.Result, c.Error = "unknown", secret.MaskAll(err.Error())
		}
		out[i] = c
	}
	if n := len(out); n > 0 && out[n-1].Index == 0 {
		out = append([]statusCheck{out[n-1]}, out[:n-1]...) // the login first, as in the report
	}
	return out, nil
}

// checkAPIKey asks GET /v1/models with API key a (it has no usage endpoint).
func checkAPIKey(ctx context.Context, opts *statusOptions, a usageAccount) error {
	tok, err := a.acct.Token(ctx)
	if err != nil {
		return err
	}
	cl := opts.Usage.Client
	_, err = opts.Service.ListModels(ctx, cl.HTTP, cl.BaseURL, tok)
	return err
}

// loginCheck is the verdict on the login: its own check, or that of the key
// it is pooled as; nil without --check or when logged out.
func loginCheck(st *statusJSON) *statusCheck {
	if st.Auth == nil {
		return nil
	}
	for i, c := range st.Check {
		if (st.Auth.PooledAs == 0 && c.Index == 0) || (st.Auth.PooledAs > 0 && c.Index == st.Auth.PooledAs) {
			return &st.Check[i]
		}
	}
	return nil
}

// printChecks renders --check's verdicts, like gh auth status.
func printChecks(w io.Writer, cs Scheme, st *statusJSON) {
	if st.Check == nil {
		return
	}
	fmt.Fprintln(w, "Online check:")
	for _, c := range st.Check {
		who := fmt.Sprintf("key %d", c.Index)
		if c.Index == 0 {
			who = "login"
		} else if st.Auth != nil && st.Auth.PooledAs == c.Index {
			who += " (the login)"
		}
		switch c.Result {
		case "ok":
			fmt.Fprintf(w, "  %s %s: accepted\n", cs.Green("✓"), who)
		case "refused":
			fmt.Fprintf(w, "  %s %s: refused: %s\n", cs.Red("✗"), who, termsafe.String(c.Error))
		case "skipped":
			fmt.Fprintf(w, "  - %s: %s\n", who, c.Error)
		default:
			fmt.Fprintf(w, "  %s %s: could not tell: %s\n", cs.Yellow("?"), who, termsafe.String(c.Error))
		}
	}
}
