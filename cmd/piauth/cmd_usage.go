package main

import (
	"github.com/urfave/cli/v2"
)

// newUsageCmd is `piauth usage`: each account's rate-limit windows (and,
// as its subcommand, `piauth usage report` over the local ledger).
func newUsageCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:        "usage",
		Usage:       "show each account's 5-hour and weekly windows",
		Subcommands: []*cli.Command{newUsageReportCmd(f)},
		Action: func(c *cli.Context) error {
			return usagef("piauth usage is not built yet")
		},
	}
}
