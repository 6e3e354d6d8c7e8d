package keystore

// Follow is Find for a caller that may hold the fingerprint of a key that a
// refresh has since replaced: Pool.Replace records the old fingerprint in the
// new key's KeyState.Replaces, so Follow returns the index of the key fp
// names or else of the key that replaced it (one refresh back, the window
// between reading the pool and using a key); -1 if neither is pooled.
func (p *Pool) Follow(fp string) int {
	if i := p.Find(fp); i >= 0 {
		return i
	}
	for i, k := range p.Keys {
		if st := p.States[Fingerprint(k)]; st != nil && st.Replaces != "" && st.Replaces == fp {
			return i
		}
	}
	return -1
}
