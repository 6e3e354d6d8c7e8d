//go:build !unix || darwin || ios

package keystore

// noSessionBus: macOS and Windows keyrings need no D-Bus.
func noSessionBus(func(string) string) string { return "" }

// firstInSession: nothing to remember where no bus warning is ever given.
func firstInSession(string, string) bool { return true }
