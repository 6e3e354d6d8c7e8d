package main

import (
	"context"
	"strings"

	"github.com/urfave/cli/v2"
)

// conversationFlags reads the flags of conversations, attachments, tool
// results, sampling and output notices.
func (o *chatOptions) conversationFlags(c *cli.Context) {
	o.ModelSet, o.SystemSet = c.IsSet("model"), c.IsSet("system")
	o.Quiet, o.AllowTruncated = c.Bool("quiet"), c.Bool("allow-truncated")
	o.Stop, o.Attach = repeatedValues(c, "stop"), repeatedValues(c, "attach")
	o.Continue, o.CID = c.Bool("continue"), c.String("cid")
	o.ToolResults, o.ToolErrors = repeatedValues(c, "tool-result"), repeatedValues(c, "tool-error")
	o.List, o.Show, o.Delete = c.Bool("list"), c.String("show"), c.String("delete")
	if c.IsSet("temperature") {
		v := c.Float64("temperature")
		o.Temperature = &v
	}
	if c.IsSet("top-p") {
		v := c.Float64("top-p")
		o.TopP = &v
	}
}

// prepare loads what the first turn needs before any request: the
// conversation continued (-c, --cid), the model, the limits, the tools, the
// tool results and the attachments.
func (s *chatSession) prepare(ctx context.Context) error {
	opts := s.opts
	if opts.Continue || opts.CID != "" {
		if err := s.resume(ctx); err != nil {
			return err
		}
	}
	if err := opts.resolveModel(); err != nil {
		return err
	}
	if err := opts.checkLimits(); err != nil {
		return err
	}
	if opts.ToolsFile != "" {
		tools, err := loadTools(opts.ToolsFile)
		if err != nil {
			return err
		}
		s.tools = tools
	}
	for i, args := range [][]string{opts.ToolResults, opts.ToolErrors} {
		for _, a := range args {
			r, err := parseToolResult(a, i == 1)
			if err != nil {
				return err
			}
			s.results = append(s.results, r)
		}
	}
	for _, path := range opts.Attach {
		b, err := loadAttachment(path, opts.Service.Limits())
		if err != nil {
			return err
		}
		s.attachments = append(s.attachments, b)
	}
	return nil
}

// checkModes refuses flags that do not go together.
func (o *chatOptions) checkModes() error {
	manage := 0
	for _, set := range []bool{o.List, o.Show != "", o.Delete != ""} {
		if set {
			manage++
		}
	}
	switch {
	case manage > 1:
		return usagef("--list, --show and --delete go one at a time")
	case manage == 1 && (len(o.Args) > 0 || o.Continue || o.CID != ""):
		return usagef("--list, --show and --delete take no prompt and no -c/--cid")
	case o.Continue && o.CID != "":
		return usagef("-c continues the last conversation, --cid a given one: use one of them")
	case len(o.ToolResults)+len(o.ToolErrors) > 0 && !o.Continue && o.CID == "":
		return usagef("--tool-result answers a stored conversation: add -c (or --cid ID)")
	}
	return nil
}

// checkSampling validates --temperature, --top-p and --stop before
// anything is sent. Extended thinking takes no temperature but 1 and a
// top_p from 0.95 to 1 (platform.claude.com, "Extended thinking": feature
// compatibility).
func (o *chatOptions) checkSampling() error {
	if t := o.Temperature; t != nil {
		switch {
		case !(*t >= 0 && *t <= 1):
			return usagef("--temperature %g: want a value from 0 to 1", *t)
		case o.Thinking > 0 && *t != 1:
			return usagef("--temperature %g: extended thinking (--thinking) takes only temperature 1", *t)
		}
	}
	if p := o.TopP; p != nil {
		switch {
		case !(*p >= 0 && *p <= 1):
			return usagef("--top-p %g: want a value from 0 to 1", *p)
		case o.Thinking > 0 && *p < 0.95:
			return usagef("--top-p %g: extended thinking (--thinking) takes top_p from 0.95 to 1", *p)
		}
	}
	for _, st := range o.Stop {
		if strings.TrimSpace(st) == "" {
			return usagef("--stop %q: a stop sequence needs a character that is not white space", st)
		}
	}
	return nil
}
