package redisstore

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/piauth/piauth/pkg/keystore"
)

// DefaultPool is the pool name when none is given: keys live under
// "piauth:{default}:".
const DefaultPool = "default"

var poolName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Prefix is the prefix of every key of pool name: "piauth:{NAME}:". The
// braces are a Redis Cluster hash tag, so a pool's keys share one slot and
// its transactions work on a cluster too.
func Prefix(name string) string { return "piauth:{" + name + "}:" }

// CheckPoolName refuses a pool name that would not make a plain key prefix.
func CheckPoolName(name string) error {
	if !poolName.MatchString(name) {
		return fmt.Errorf("store pool name %q: use 1 to 64 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

// MaskURL returns u with its password replaced by "****", for messages.
func MaskURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		if i := strings.Index(u, "@"); i >= 0 && keystore.ValidStore(u) {
			scheme, _, _ := strings.Cut(u, "://")
			return scheme + "://****@" + u[i+1:]
		}
		return u
	}
	if _, ok := p.User.Password(); ok {
		p.User = url.UserPassword(p.User.Username(), "****")
	}
	return strings.Replace(p.String(), "%2A%2A%2A%2A", "****", 1)
}
