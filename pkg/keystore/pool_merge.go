package keystore

import "slices"

// Merge adds src's keys to p by fingerprint (`piauth store push`): a key p
// lacks is added with its state; a key both hold keeps p's state, except
// for the refresh token and expiry, taken from whichever copy expires later
// (the newer refresh); a key of src that p has since replaced (a refresh on
// another machine) is skipped, and a key of src that replaced one of p's
// takes its place. Into an empty p, src is copied whole (active key and
// unknown fields too), so a push then a pull gives back the same file.
func (p *Pool) Merge(src *Pool) (added, updated int) {
	if len(p.Keys) == 0 {
		*p = *src.clone()
		return len(p.Keys), 0
	}
	for i, k := range src.Keys {
		st := *src.State(i)
		fp := Fingerprint(k)
		if j := slices.Index(p.Keys, k); j >= 0 {
			cur := p.State(j)
			if st.Expires > cur.Expires && st.Refresh != "" {
				cur.Refresh, cur.Expires = st.Refresh, st.Expires
				updated++
			}
			continue
		}
		if p.Follow(fp) >= 0 {
			continue // p holds the key that replaced this copy
		}
		if j := p.Find(st.Replaces); st.Replaces != "" && j >= 0 {
			old := Fingerprint(p.Keys[j])
			p.Keys[j] = k
			delete(p.States, old)
			p.States[fp] = &st
			updated++
			continue
		}
		p.Add(k, st)
		added++
	}
	return added, updated
}
