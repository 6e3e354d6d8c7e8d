// Package docs checks that docs/design.md says what the code is: every
// func, method and type line in its ```go blocks must match the code's
// declaration exactly (whitespace aside), so the contract cannot drift from
// the packages without a test failing.
package docs

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// section matches a package heading: "## pkg/keystore".
var section = regexp.MustCompile("^## ((?:pkg|internal)/[a-z]+)")

// TestDesignSignatures compares every signature line of design.md's ```go
// blocks with the declarations of the package its section names.
func TestDesignSignatures(t *testing.T) {
	data, err := os.ReadFile("design.md")
	require.NoError(t, err)
	blocks := signatureLines(string(data))
	require.NotEmpty(t, blocks, "design.md has package sections with ```go blocks")
	for pkg, lines := range blocks {
		t.Run(pkg, func(t *testing.T) {
			have := declarations(t, filepath.Join("..", pkg))
			for _, l := range lines {
				assert.Contains(t, have, normalize(l), "design.md (%s) declares\n\t%s\nwhich the code does not have; the code's declarations:\n\t%s",
					pkg, l, strings.Join(closest(have, l), "\n\t"))
			}
		})
	}
}

// signatureLines returns, per package section, the lines of its ```go
// blocks that start with "func " or "type ".
func signatureLines(doc string) map[string][]string {
	out := map[string][]string{}
	pkg, inGo := "", false
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			pkg = ""
			if m := section.FindStringSubmatch(line); m != nil {
				pkg = m[1]
			}
		case strings.HasPrefix(line, "```go"):
			inGo = true
		case strings.HasPrefix(line, "```"):
			inGo = false
		case inGo && pkg != "" && (strings.HasPrefix(line, "func ") || strings.HasPrefix(line, "type ")):
			out[pkg] = append(out[pkg], stripComment(line))
		}
	}
	return out
}

// stripComment drops a trailing "// …" comment (outside string literals,
// which signatures do not have).
func stripComment(line string) string {
	if i := strings.Index(line, " //"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// declarations renders every exported func, method and type of the package
// in dir as one normalized line: "func (s *Store) Pool() (*Pool, error)",
// "type Mode int", "type Store struct".
func declarations(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	require.NoError(t, err)
	var out []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() || d.Recv != nil && !exportedRecv(d.Recv) {
						continue
					}
					d.Body, d.Doc = nil, nil
					out = append(out, normalize(render(t, fset, d)))
				case *ast.GenDecl:
					if d.Tok != token.TYPE {
						continue
					}
					for _, s := range d.Specs {
						ts := s.(*ast.TypeSpec)
						if !ts.Name.IsExported() {
							continue
						}
						out = append(out, normalize("type "+ts.Name.Name+typeKind(t, fset, ts)))
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// typeKind is " struct", " interface", or the rendered underlying type for
// other declarations (" int", " = secret.Kind", " func(…) …").
func typeKind(t *testing.T, fset *token.FileSet, ts *ast.TypeSpec) string {
	switch ts.Type.(type) {
	case *ast.StructType:
		return " struct"
	case *ast.InterfaceType:
		return " interface"
	}
	eq := " "
	if ts.Assign.IsValid() {
		eq = " = "
	}
	return eq + render(t, fset, ts.Type)
}

func exportedRecv(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	e := fl.List[0].Type
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if ix, ok := e.(*ast.IndexExpr); ok {
		e = ix.X
	}
	id, ok := e.(*ast.Ident)
	return ok && id.IsExported()
}

func render(t *testing.T, fset *token.FileSet, node any) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, printer.Fprint(&b, fset, node))
	return b.String()
}

// normalize folds runs of white space to one space.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// closest lists the code's declarations that share the doc line's name, to
// show what it should say.
func closest(have []string, line string) []string {
	name := declName(normalize(line))
	var out []string
	for _, h := range have {
		if declName(h) == name {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return []string{"(nothing named " + name + ")"}
	}
	return out
}

// declName is the declared name of a normalized line: Name in "func Name(",
// "func (r *T) Name(" and "type Name …".
var nameRE = regexp.MustCompile(`^(?:func (?:\([^)]*\) )?|type )([A-Za-z0-9_]+)`)

func declName(s string) string {
	if m := nameRE.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return s
}
