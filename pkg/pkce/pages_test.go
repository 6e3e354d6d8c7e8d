package pkce

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestPagesGolden(t *testing.T) {
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{name: "success.golden.html", render: func(b *bytes.Buffer) error { return successPage.Execute(b, nil) }},
		{name: "failure.golden.html", render: func(b *bytes.Buffer) error {
			return failurePage.Execute(b, &AuthorizeError{Code: "<script>alert(1)</script>", Description: `"quoted" & <b>bold</b>`})
		}},
		{name: "badrequest.golden.html", render: func(b *bytes.Buffer) error {
			return badRequestPage.Execute(b, "The state parameter does not match this login.")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, tt.render(&b))
			path := filepath.Join("testdata", tt.name)
			if *update {
				require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(want), b.String())
		})
	}
}
