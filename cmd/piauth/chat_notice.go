package main

import (
	"fmt"

	"github.com/piauth/piauth/pkg/stream"
)

// notice says on stderr, after the accounting line, why an answer stopped
// when it did not simply end: cut at max_tokens or by the context window
// (a one-shot turn then fails with a *truncatedError, exit 5, unless
// --allow-truncated), refused, or paused by the server.
func (s *chatSession) notice(msg *stream.Message) error {
	o := s.opts
	var text string
	switch msg.StopReason {
	case "max_tokens":
		text = fmt.Sprintf("answer cut at max_tokens (%d); raise --max-tokens or continue with -c", o.MaxTokens)
	case "model_context_window_exceeded":
		text = "answer cut: the conversation fills the model's context window; start a new one"
	case "refusal":
		text = "the model declined to answer (stop_reason refusal)"
	case "pause_turn":
		text = "the server paused this turn (stop_reason pause_turn); run 'piauth chat -c' to let it go on"
	default:
		return nil
	}
	truncated := msg.StopReason == "max_tokens" || msg.StopReason == "model_context_window_exceeded"
	if truncated && !s.interactive && !o.AllowTruncated {
		return &truncatedError{msg: text}
	}
	fmt.Fprintln(o.IO.ErrOut, o.IO.ErrScheme().Yellow("piauth: "+text))
	return nil
}
