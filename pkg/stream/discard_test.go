package stream

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccumulatorDiscard: with Discard every text and thinking delta is still
// reported, in order and intact, but nothing of it is kept, so a long answer
// costs no memory; the rest of the message (usage, stop reason, tool calls,
// signature) is as without it.
func TestAccumulatorDiscard(t *testing.T) {
	for name, data := range map[string][]byte{"long": genText(3000), "thinking_tools": genThinkingTools(300)} {
		t.Run(name, func(t *testing.T) {
			var kept, streamed bytes.Buffer
			full, err := ReadMessage(bytes.NewReader(data), nil, func(d Delta) error {
				kept.Write(d.Text)
				kept.Write(d.Thinking)
				return nil
			})
			require.NoError(t, err)

			acc := Accumulator{Discard: true}
			msg, err := acc.Consume(bytes.NewReader(data), func(d Delta) error {
				streamed.Write(d.Text)
				streamed.Write(d.Thinking)
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, kept.String(), streamed.String())
			require.Len(t, msg.Content, len(full.Content))
			for i, b := range msg.Content {
				assert.Empty(t, b.Text, "block %d", i)
				assert.Empty(t, b.Thinking, "block %d", i)
				want := full.Content[i]
				want.Text, want.Thinking = "", ""
				assert.Equal(t, want, b, "block %d", i)
			}
			assert.Equal(t, full.Usage, msg.Usage)
			assert.Equal(t, full.StopReason, msg.StopReason)
			for _, bs := range acc.blocks {
				assert.LessOrEqual(t, cap(bs.text), 1<<12, "a discarded block keeps at most one delta")
			}
		})
	}
}
