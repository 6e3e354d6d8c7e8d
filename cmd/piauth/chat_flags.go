package main

import (
	"encoding/json"
	"strings"

	"github.com/urfave/cli/v2"
)

// repeated is the value of a repeatable chat flag (-a, --stop,
// --tool-result, --tool-error). Unlike cli.StringSliceFlag it never splits a
// value on commas: a stop sequence, a file name or a tool result's JSON may
// hold one.
type repeated []string

// serialPrefix marks Serialize's form, which Set takes back whole (the
// parser copies a flag's value to its aliases that way).
const serialPrefix = "\x00repeated:"

// Set appends one occurrence of the flag (or restores a Serialize form).
func (r *repeated) Set(v string) error {
	if data, ok := strings.CutPrefix(v, serialPrefix); ok {
		return json.Unmarshal([]byte(data), (*[]string)(r))
	}
	*r = append(*r, v)
	return nil
}

func (r *repeated) String() string { return strings.Join(*r, ", ") }

// Serialize implements cli.Serializer.
func (r *repeated) Serialize() string {
	b, _ := json.Marshal([]string(*r))
	return serialPrefix + string(b)
}

// repeatedFlag is a repeatable flag whose values are kept whole.
func repeatedFlag(name string, aliases []string, usage string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Aliases: aliases, Usage: usage, Value: &repeated{}}
}

// repeatedValues are the values given to a repeatedFlag, in order.
func repeatedValues(c *cli.Context, name string) []string {
	if r, ok := c.Generic(name).(*repeated); ok {
		return *r
	}
	return nil
}
