package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// decodeStrict decodes data into v, refusing unknown fields and trailing
// data. Errors wrap ErrServiceData and carry "line L, column C".
func decodeStrict(data []byte, v any) error {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		line, col := position(data, int64(len(data)-len(bytes.TrimLeft(data, " \t\r\n"))))
		return fmt.Errorf("%w: line %d, column %d: not a JSON object", ErrServiceData, line, col)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, tokErr := dec.Token(); tokErr == nil {
			err = errors.New("unexpected data after the top-level object")
		}
	}
	if err == nil {
		return nil
	}
	offset := dec.InputOffset()
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch { // both Offsets count the bytes read up to and including the culprit
	case errors.As(err, &syn):
		offset = syn.Offset - 1
	case errors.As(err, &typ):
		offset = typ.Offset - 1
	}
	line, col := position(data, offset)
	return fmt.Errorf("%w: line %d, column %d: %v", ErrServiceData, line, col, err)
}

// position converts a 0-based byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// mergePatch applies the JSON merge patch (RFC 7386) patch to doc.
func mergePatch(doc, patch []byte) ([]byte, error) {
	if len(bytes.TrimSpace(patch)) == 0 {
		return doc, nil
	}
	var d, p any
	if err := unmarshalNumbers(doc, &d); err != nil {
		return nil, err
	}
	if err := unmarshalNumbers(patch, &p); err != nil {
		return nil, err
	}
	return json.Marshal(mergeValue(d, p))
}

func unmarshalNumbers(data []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

func mergeValue(doc, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := doc.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = mergeValue(d[k], v)
	}
	return d
}

// setKey sets the top-level key of a JSON object document (nil or empty:
// a new object) to v.
func setKey(doc []byte, key string, v any) ([]byte, error) {
	o := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(doc)) > 0 {
		if err := json.Unmarshal(doc, &o); err != nil {
			return nil, err
		}
	}
	if o == nil {
		o = map[string]json.RawMessage{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	o[key] = b
	return json.Marshal(o)
}
