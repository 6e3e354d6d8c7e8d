package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// modelsOptions are the inputs of `piauth models`.
type modelsOptions struct {
	IO      *IOStreams
	Service *stream.Service
	Source  *rotate.Source
	HTTP    *http.Client
	BaseURL string

	JSON bool
}

func newModelsCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "models",
		Usage: "list the current Claude models with aliases, limits and list prices",
		Description: `Asks GET /v1/models with the credential a request would use now and merges
the answer with piauth's own table (aliases, prices per million tokens, cache
write 5 min / 1 h and cache read). When the API does not answer or refuses
the credential, it shows the table alone, and says so. Retired models are
never listed. The table is data: PIAUTH_SERVICE_FILE (or
~/.config/piauth/anthropic.json) overrides any of it.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON: {source, note, models: [...]}"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			svc, base, hc, err := f.upstream()
			if err != nil {
				return err
			}
			src, err := f.Source()
			if err != nil {
				return err
			}
			return modelsRun(c.Context, &modelsOptions{IO: f.IO, Service: svc, Source: src, HTTP: hc, BaseURL: base, JSON: c.Bool("json")})
		},
	}
}

// modelJSON is one model of `piauth models --json`.
type modelJSON struct {
	ID            string             `json:"id"`
	DisplayName   string             `json:"display_name"`
	Aliases       []string           `json:"aliases"`
	ContextWindow int                `json:"context_window"`
	MaxOutput     int                `json:"max_output"`
	Prices        *stream.Prices     `json:"prices"` // USD per million tokens; null when unknown
	Tiers         []stream.PriceTier `json:"price_tiers,omitempty"`
	Derived       []string           `json:"derived_prices,omitempty"`
	InTable       bool               `json:"in_table"` // piauth's table knows it
}

// modelsJSON is `piauth models --json`.
type modelsJSON struct {
	Source string      `json:"source"` // "api" (merged with the table) or "built-in"
	Note   string      `json:"note"`   // why the built-in table is shown, else ""
	Models []modelJSON `json:"models"`
}

// modelsRun lists the models: the API's answer merged with the table, else
// the table.
func modelsRun(ctx context.Context, opts *modelsOptions) error {
	list, source, note := opts.fetch(ctx)
	out := modelsJSON{Source: source, Note: note, Models: make([]modelJSON, 0, len(list))}
	for _, m := range list {
		j := modelJSON{ID: m.ID, DisplayName: m.DisplayName, Aliases: m.Aliases, ContextWindow: m.ContextWindow,
			MaxOutput: m.MaxOutput, Tiers: m.Tiers, Derived: m.Derived, InTable: m.Listed}
		if j.Aliases == nil {
			j.Aliases = []string{}
		}
		if m.Prices != (stream.Prices{}) {
			p := m.Prices
			j.Prices = &p
		}
		out.Models = append(out.Models, j)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tALIASES\tCONTEXT\tMAX OUT\t$ IN/OUT\t$ CACHE W5M/W1H/R")
	for _, m := range out.Models {
		aliases, price, cache := "-", "-", "-"
		if len(m.Aliases) > 0 {
			aliases = strings.Join(m.Aliases, ",")
		}
		if p := m.Prices; p != nil {
			price = fmt.Sprintf("%g / %g", p.Input, p.Output)
			cache = fmt.Sprintf("%g / %g / %g", p.CacheWrite5m, p.CacheWrite1h, p.CacheRead)
			if len(m.Tiers) > 0 {
				price += " (tiered)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, aliases, tokens(m.ContextWindow), tokens(m.MaxOutput), price, cache)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch source {
	case "api":
		fmt.Fprintln(opts.IO.ErrOut, "models: from the API's /v1/models; aliases and prices (USD per million tokens) from piauth's table")
	default:
		fmt.Fprintf(opts.IO.ErrOut, "models: piauth's built-in table (%s); prices are USD per million tokens\n", note)
	}
	return nil
}

// fetch asks the API with the credential a request would use now, without
// rotating or marking any key (a refusal of /v1/models says nothing about a
// key), and falls back to the table.
func (o *modelsOptions) fetch(ctx context.Context) ([]stream.Model, string, string) {
	cred, _, err := o.Source.Token(ctx, false)
	if err != nil {
		return o.Service.Models(), "built-in", "no credential to ask the API with: " + err.Error()
	}
	api, err := o.Service.ListModels(ctx, o.HTTP, o.BaseURL, cred.Token)
	if err != nil {
		return o.Service.Models(), "built-in", "the API did not list them: " + secret.MaskAll(err.Error())
	}
	return o.Service.MergeModels(api), "api", ""
}

// tokens renders a token count as 1M or 128K; "-" when unknown.
func tokens(n int) string {
	switch {
	case n <= 0:
		return "-"
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1_000 == 0:
		return fmt.Sprintf("%dK", n/1_000)
	}
	return fmt.Sprint(n)
}
