package main

import (
	"github.com/urfave/cli/v2"
)

// newUsageReportCmd is `piauth usage report`: tokens and cost from the
// local request ledger.
func newUsageReportCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "tokens, requests and cost from the local ledger",
		Action: func(c *cli.Context) error {
			return usagef("piauth usage report is not built yet")
		},
	}
}
