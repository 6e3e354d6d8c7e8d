package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/convo"
)

// listPromptRunes bounds the first prompt shown by --list.
const listPromptRunes = 48

// conversationItem is one element of `piauth chat --list --json`, and the
// header of `--show ID --json`. Field names are stable.
type conversationItem struct {
	ID          string          `json:"id"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	Model       string          `json:"model"`
	System      string          `json:"system,omitempty"`
	Tools       json.RawMessage `json:"tools,omitempty"`
	ToolsFile   string          `json:"tools_file,omitempty"`
	Fingerprint string          `json:"fingerprint"` // the key that answered last ("" the login)
	Turns       int             `json:"turns"`
	CostUSD     float64         `json:"cost_usd"` // over the turns with a known price
	Title       string          `json:"title"`    // the first prompt (up to 200 characters)
}

// conversationShow is `piauth chat --show ID --json`: the header, the
// messages as the API takes them (what -c sends again), and per turn the
// model, key, stop reason, usage and cost.
type conversationShow struct {
	conversationItem
	Messages []json.RawMessage `json:"messages"`
	TurnInfo []turnItem        `json:"turn_info"`
}

type turnItem struct {
	Seq         int             `json:"seq"`
	Time        time.Time       `json:"time"`
	Model       string          `json:"model"`
	Fingerprint string          `json:"fingerprint"`
	StopReason  string          `json:"stop_reason"`
	Usage       json.RawMessage `json:"usage"`
	CostUSD     *float64        `json:"cost_usd"`
}

func itemOf(c convo.Conversation) conversationItem {
	return conversationItem{ID: c.ID, Created: c.Created.UTC(), Updated: c.Updated.UTC(), Model: c.Model,
		System: c.System, Tools: c.Tools, ToolsFile: c.ToolsFile, Fingerprint: c.Fingerprint,
		Turns: c.Turns, CostUSD: c.CostUSD, Title: c.Title}
}

// chatManage runs --list, --show ID or --delete ID.
func chatManage(ctx context.Context, opts *chatOptions) error {
	db, err := opts.Conversations.manage(ctx)
	if err != nil {
		return err
	}
	switch {
	case opts.List:
		return chatList(ctx, opts, db)
	case opts.Show != "":
		return chatShow(ctx, opts, db)
	}
	id, err := db.Resolve(ctx, opts.Delete)
	if err != nil {
		return usagef("--delete %w", err)
	}
	if err := db.Delete(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "deleted conversation %s\n", id)
	return nil
}

func chatList(ctx context.Context, opts *chatOptions, db *convo.DB) error {
	cs, err := db.List(ctx, 0)
	if err != nil {
		return err
	}
	if opts.JSON {
		items := make([]conversationItem, len(cs))
		for i, c := range cs {
			items[i] = itemOf(c)
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	if len(cs) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no conversations yet (%s)\n", db.Path())
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUPDATED\tMODEL\tTURNS\tCOST\tFIRST PROMPT")
	for _, c := range cs {
		title := strings.Join(strings.Fields(c.Title), " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t$%s\t%s\n", c.ID, when.Clock(c.Updated, now), termsafe.String(c.Model),
			c.Turns, strconv.FormatFloat(c.CostUSD, 'f', 4, 64), termsafe.String(truncateRunes(title, listPromptRunes)))
	}
	return tw.Flush()
}

func chatShow(ctx context.Context, opts *chatOptions, db *convo.DB) error {
	id, err := db.Resolve(ctx, opts.Show)
	if err != nil {
		return usagef("--show %w", err)
	}
	c, err := db.Get(ctx, id)
	if err != nil {
		return err
	}
	turns, err := db.Turns(ctx, id)
	if err != nil {
		return err
	}
	if opts.JSON {
		show := conversationShow{conversationItem: itemOf(*c), Messages: convo.Messages(turns), TurnInfo: []turnItem{}}
		for _, t := range turns {
			show.TurnInfo = append(show.TurnInfo, turnItem{Seq: t.Seq, Time: t.Time.UTC(), Model: t.Model,
				Fingerprint: t.Fingerprint, StopReason: t.StopReason, Usage: t.Usage, CostUSD: t.CostUSD})
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(show)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "conversation %s · %s · %d turns · $%s · updated %s\n", c.ID, c.Model, c.Turns,
		strconv.FormatFloat(c.CostUSD, 'f', 4, 64), when.Clock(c.Updated, time.Now()))
	if c.System != "" {
		fmt.Fprintf(&b, "system: %s\n", c.System)
	}
	for _, t := range turns {
		if t.Request != nil {
			b.WriteString("\n")
			writeMessage(&b, "> ", t.Request)
		}
		b.WriteString("\n")
		writeMessage(&b, "", t.Response)
		if t.StopReason != "" && t.StopReason != "end_turn" {
			fmt.Fprintf(&b, "[stop_reason %s]\n", t.StopReason)
		}
	}
	out := b.String()
	if opts.IO.OutTTY {
		out = termsafe.String(out)
	}
	_, err = io.WriteString(opts.IO.Out, out)
	return err
}

// writeMessage renders one stored message for --show: text as it is (user
// lines prefixed), thinking under a "thinking:" label, tool calls and
// results on one line each, attachments by kind and name.
func writeMessage(b *strings.Builder, prefix string, message json.RawMessage) {
	var m struct {
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(message, &m) != nil {
		return
	}
	var text string
	if json.Unmarshal(m.Content, &text) == nil {
		writePrefixed(b, prefix, text)
		return
	}
	var blocks []struct {
		Type      string          `json:"type"`
		Text      string          `json:"text"`
		Thinking  string          `json:"thinking"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
		ToolUseID string          `json:"tool_use_id"`
		Content   json.RawMessage `json:"content"`
		IsError   bool            `json:"is_error"`
		Title     string          `json:"title"`
		Source    struct {
			MediaType string `json:"media_type"`
		} `json:"source"`
	}
	if json.Unmarshal(m.Content, &blocks) != nil {
		return
	}
	for _, bl := range blocks {
		switch bl.Type {
		case "text":
			writePrefixed(b, prefix, bl.Text)
		case "thinking":
			b.WriteString("thinking:\n")
			writePrefixed(b, "  ", bl.Thinking)
		case "redacted_thinking":
			b.WriteString("thinking: (redacted)\n")
		case "tool_use", "server_tool_use":
			fmt.Fprintf(b, "tool_use %s %s (id %s)\n", bl.Name, compactJSON(bl.Input), bl.ID)
		case "tool_result":
			kind := "tool_result"
			if bl.IsError {
				kind = "tool_error"
			}
			fmt.Fprintf(b, "%s%s %s %s\n", prefix, kind, bl.ToolUseID, compactJSON(bl.Content))
		case "image", "document":
			fmt.Fprintf(b, "%s[%s %s]\n", prefix, bl.Type, strings.TrimSpace(bl.Source.MediaType+" "+bl.Title))
		default:
			fmt.Fprintf(b, "%s[%s]\n", prefix, bl.Type)
		}
	}
}

func writePrefixed(b *strings.Builder, prefix, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
}

func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil || buf.Len() == 0 {
		return "{}"
	}
	return buf.String()
}
