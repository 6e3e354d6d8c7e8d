package keystore

// KeyringIndex returns the set of fingerprints listed by the keyring's index
// item, i.e. the keys mirrored there, with a single keyring read instead of
// one per key (`piauth key list` with 1,000 keys). ok is false when the
// keyring is off or unavailable. An item deleted behind piauth's back still
// counts until `piauth key sync` rewrites the index.
func (s *Store) KeyringIndex() (fps map[string]bool, ok bool) {
	fps, ok, _ = s.KeyringIndexErr()
	return fps, ok
}

// KeyringIndexErr is KeyringIndex that also returns the keyring error when
// the keyring is required (ModeOn) but unavailable; ModeAuto warns once and
// returns a nil error.
func (s *Store) KeyringIndexErr() (fps map[string]bool, ok bool, err error) {
	kr, err := s.keyring(false)
	if kr == nil {
		return nil, false, err
	}
	list, err := readIndex(kr)
	if err != nil {
		return nil, false, s.failed(err, false)
	}
	fps = make(map[string]bool, len(list))
	for _, fp := range list {
		fps[fp] = true
	}
	return fps, true, nil
}
