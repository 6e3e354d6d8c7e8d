package main

import (
	"context"
	"net/http"
	"strconv"

	"github.com/piauth/piauth/pkg/rotate"
)

// messagesClient is what chat and proxy need to talk to the Messages API.
type messagesClient struct {
	HTTP     *http.Client  // its Transport adds credentials + OAuth shaping + rotation
	BaseURL  string        // f.BaseURL(): PIAUTH_BASE_URL or https://api.anthropic.com
	KeyLabel func() string // rotate.Indicator of the last answer: "🔑 2/3 (rotated)", "" for the login
	Mode     rotate.Mode   // where credentials come from (login or pool)
}

// messagesOptions tune MessagesClient.
type messagesOptions struct {
	Wait     bool    // --wait: sleep until a rate-limited pool frees (rotation)
	SwitchAt float64 // --switch-at percent; 0: PIAUTH_SWITCH_AT, else off
}

// Source is the one credential source of every command: rotate.Source over
// the Store with the Factory's Refresher and clock.
func (f *Factory) Source() (*rotate.Source, error) {
	r, err := f.Refresher()
	if err != nil {
		return nil, err
	}
	return &rotate.Source{Store: r.Store, Refresher: r, Now: f.Now}, nil
}

// MessagesClient returns a client for the Messages API whose transport takes
// every request's credential from the Source (rotate.ModeFor: the pool when it
// holds two or more keys, else the login, else a pool of one key), refreshed
// when expired, rotating over the pool on rate limits and refusals with a line
// on stderr. It fails (exit 3) when no credential is configured at all. The
// client has no overall timeout: a stream lasts as long as the answer, and ctx
// cancels it.
func (f *Factory) MessagesClient(_ context.Context, o messagesOptions) (*messagesClient, error) {
	src, err := f.Source()
	if err != nil {
		return nil, err
	}
	mode, err := src.Check()
	if err != nil {
		return nil, err
	}
	if src.SwitchAt, err = f.switchAt(o.SwitchAt); err != nil {
		return nil, err
	}
	src.SwitchLog = f.IO.ErrOut
	svc, base, hc, err := f.upstream()
	if err != nil {
		return nil, err
	}
	learned, err := f.LearnedPath()
	if err != nil {
		learned = "" // no state dir: learn for this run only
	}
	rt := &rotate.Transport{Base: hc.Transport, Source: src, Service: svc, Learned: learned, Log: f.IO.ErrOut, Wait: o.Wait}
	hc.Timeout = 0 // a stream lasts as long as the answer; the transport bounds silence
	hc.Transport = rt
	return &messagesClient{HTTP: hc, BaseURL: base, KeyLabel: rt.KeyLabel, Mode: mode}, nil
}

// switchAt is the switch-at percent (rotate.Source.SwitchAt): the flag's
// value when given, else PIAUTH_SWITCH_AT, else 0 (off).
func (f *Factory) switchAt(flag float64) (float64, error) {
	v, from := flag, "--switch-at"
	if v == 0 {
		env := f.Getenv("PIAUTH_SWITCH_AT")
		if env == "" {
			return 0, nil
		}
		var err error
		if v, err = strconv.ParseFloat(env, 64); err != nil {
			return 0, usagef("PIAUTH_SWITCH_AT %q is not a percent (e.g. 90)", env)
		}
		from = "PIAUTH_SWITCH_AT"
	}
	if !(v > 0 && v <= 100) {
		return 0, usagef("%s %g: want a percent from 1 to 100", from, v)
	}
	return v, nil
}
