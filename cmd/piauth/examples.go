package main

import "github.com/urfave/cli/v2"

// commandExamples holds the EXAMPLES of every command's --help, keyed by the
// command's full name below the app ("" is piauth itself). One or two each;
// a test checks that every command has some.
var commandExamples = map[string]string{
	"": `piauth login                             # log in with the browser
piauth chat --stream "Explain PKCE in two sentences"`,
	"login": `piauth login                             # the browser opens; or paste the code#state shown
piauth login --add-to-pool --label work  # log in and pool the account`,
	"logout": `piauth logout                            # forget the Claude login (pi's other providers stay)`,
	"token": `export ANTHROPIC_AUTH_TOKEN=$(piauth token)
piauth token --refresh                   # refresh even if it has not expired`,
	"status": `piauth status
piauth status --json | jq .pool.indicator`,
	"key": `piauth key list
piauth key use 2`,
	"key add": `piauth key add --label work              # pool the account that is logged in now
pbpaste | piauth key add --stdin         # pool tokens from the clipboard, one a line`,
	"key list": `piauth key list
piauth key list --json | jq -r '.[] | select(.state=="cooling") | .index'`,
	"key use": `piauth key use 2                         # make key 2 active
piauth key use 3f2a9c                    # by fingerprint prefix`,
	"key reset": `piauth key reset                         # back to key 1, cooldowns cleared`,
	"key remove": `piauth key remove 3                      # asks first on a terminal
piauth key remove 3f2a9c --yes           # by fingerprint prefix, without asking`,
	"key prune": `piauth key prune                         # lists the revoked keys and asks first on a terminal
piauth key prune --yes                   # in a script`,
	"key sync":    `piauth key sync                          # after editing key-rotation.json by hand`,
	"key restore": `piauth key restore                       # key-rotation.json lost or corrupt: rebuild it from the keyring`,
	"chat": `piauth chat --stream --thinking 2048 --show-thinking "Why is the sky blue?"
git diff | piauth chat "Write a commit message for this" && piauth chat -c "Shorter, please"`,
	"models": `piauth models
piauth models --json | jq -r '.models[].id'`,
	"usage": `piauth usage
piauth usage --json | jq '.accounts[] | {label, windows}'`,
	"usage report": `piauth usage report --since 7d
piauth usage report --by model --json`,
	"proxy": `piauth proxy --json-log
export ANTHROPIC_BASE_URL=http://127.0.0.1:8787 ANTHROPIC_API_KEY=$(piauth proxy --show-key)`,
	"proxy install": `piauth proxy install --dry-run           # print the unit (or plist) and the commands, change nothing
piauth proxy install --port 8787 --switch-at 90`,
	"proxy uninstall": `piauth proxy uninstall                   # stop, disable and remove the service`,
	"proxy status": `piauth proxy status
piauth proxy status --json | jq .proxy.requests`,
	"emulator": `piauth emulator --addr 127.0.0.1:8080 --quiet
piauth emulator --scenario my-scenario.json`,
	"completion": `piauth completion zsh > ~/.zfunc/_piauth
source <(piauth completion bash)`,
	"help": `piauth help
piauth help key add`,
	"man": `piauth man | man -l -
piauth man > ~/.local/share/man/man1/piauth.1`,

	// One pool on several machines (issue 18).
	"store": `export PIAUTH_STORE=redis://10.0.0.5:6379/0 PIAUTH_STORE_KEY_FILE=~/.config/piauth/store.key
piauth store status`,
	"store status": `piauth store status`,
	"store push":   `piauth store push                        # once, from the machine that has the pool`,
	"store pull":   `piauth store pull                        # write the shared pool to key-rotation.json for pi`,
}

// applyExamples adds each command's examples to its --help.
func applyExamples(app *cli.App) {
	visitCommands(app.Commands, "", func(name string, c *cli.Command) {
		if ex := commandExamples[name]; ex != "" {
			c.CustomHelpTemplate = helpTemplate(c, ex)
		}
	})
}
