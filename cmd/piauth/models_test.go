package main

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

func TestModels(t *testing.T) {
	tests := []struct {
		name       string
		scenario   string
		login      bool
		wantSource string
		wantNote   string
	}{
		{"the API's list merged with the table", "", true, "api", ""},
		{"the API refuses OAuth: the table alone", `{"service": {"models_reject_oauth": true}}`, true, "built-in", "the API did not list them: anthropic: HTTP 401 authentication_error"},
		{"not logged in: the table alone", "", false, "built-in", "no credential to ask the API with: not logged in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t)
			if tt.scenario != "" {
				sc, err := emulator.ParseScenario([]byte(tt.scenario))
				require.NoError(t, err)
				srv := httptest.NewServer(emulator.New(emulator.Options{Scenario: sc}))
				t.Cleanup(srv.Close)
				env.url = srv.URL
			}
			access, refresh := authToken("oat", "models"), authToken("ort", "models")
			if tt.login {
				env.writeAuth(t, oauthCred(access, refresh, time.Now().Add(time.Hour)))
				env.seedPool(t, 0, false, []string{access, authToken("oat", "models2")}, make([]keystore.KeyState, 2))
			}
			js := env.run(t, "", "models", "--json")
			require.Equal(t, 0, js.code, js.err)
			var got modelsJSON
			require.NoError(t, json.Unmarshal([]byte(js.out), &got))
			assert.Equal(t, tt.wantSource, got.Source)
			assert.Contains(t, got.Note, tt.wantNote)
			byID := map[string]modelJSON{}
			for _, m := range got.Models {
				byID[m.ID] = m
			}
			opus, ok := byID["claude-opus-5-5"]
			require.True(t, ok, "current models are listed: %v", got.Models)
			assert.Equal(t, []string{"opus"}, opus.Aliases)
			require.NotNil(t, opus.Prices)
			assert.Equal(t, 8.0, opus.Prices.CacheWrite1h, "1 h cache writes have their own price")
			assert.NotContains(t, byID, "claude-sonnet-4-5", "retired models are not listed")
			human := env.run(t, "", "models")
			require.Equal(t, 0, human.code, human.err)
			assert.Contains(t, human.out, "claude-sonnet-5-5  sonnet")
			assert.Contains(t, human.err, "models: ")
			assertNoToken(t, []string{access, refresh}, js.out, js.err, human.out, human.err)
			if tt.login {
				for i := range env.pool(t).Keys {
					assert.True(t, env.pool(t).Status(i, time.Now()).State.Usable(), "listing models never marks a key")
				}
			}
		})
	}
}
