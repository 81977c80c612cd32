package query

import (
	"strings"
)

// Source is what a query reads: device twins or module twins.
type Source uint8

const (
	// Devices is "FROM devices": device twins.
	Devices Source = iota
	// Modules is "FROM devices.modules": module twins.
	Modules
)

// String returns the source as written in a query.
func (s Source) String() string {
	if s == Modules {
		return "devices.modules"
	}
	return "devices"
}

// Query is a parsed query.
type Query struct {
	// From is the collection queried.
	From Source
	// Count is true for "SELECT COUNT() …": the answer is one object
	// {CountAlias: n} instead of the matching twins.
	Count bool
	// CountAlias is the name after AS, or "$1" when AS is absent.
	CountAlias string

	where expr // nil: every twin matches
}

// Parse parses a query. Errors are *Error values (see the package
// documentation). Parse never panics.
func Parse(s string) (*Query, error) {
	if len(s) > MaxLength {
		return nil, errorf(ErrTooLong, MaxLength, "query is %d bytes, longer than %d", len(s), MaxLength)
	}
	p := &parser{lex: lexer{src: s}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

// parser is a recursive-descent parser with one token of look-ahead.
type parser struct {
	lex   lexer
	tok   token
	depth int
	from  Source
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// isKeyword reports whether the current token is the keyword kw (upper case).
func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tokIdent && strings.EqualFold(p.tok.text, kw)
}

func (p *parser) expectKeyword(kw string) error {
	if !p.isKeyword(kw) {
		return p.unexpected("expected " + kw)
	}
	return p.advance()
}

// unexpected builds the error for the current token.
func (p *parser) unexpected(want string) *Error {
	if p.tok.kind == tokEOF {
		return errorf(ErrSyntax, p.tok.pos, "%s, found the end of the query", want)
	}
	return errorf(ErrSyntax, p.tok.pos, "%s, found %s", want, describe(p.tok))
}

func describe(t token) string {
	switch t.kind {
	case tokString:
		return "a string"
	case tokNumber:
		return "the number " + t.text
	case tokIdent:
		return "'" + t.text + "'"
	}
	return "'" + t.text + "'"
}

// unsupportedClauses are keywords of IoT Hub's language (or of the SQL it
// resembles) that this subset rejects by name, where they may appear after
// the FROM source or the WHERE condition.
var unsupportedClauses = map[string]string{
	"GROUP":  "GROUP BY",
	"ORDER":  "ORDER BY",
	"JOIN":   "JOIN",
	"LIMIT":  "LIMIT",
	"OFFSET": "OFFSET",
	"HAVING": "HAVING",
	"UNION":  "UNION",
}

// unsupportedOperators are word operators of IoT Hub's language this subset
// rejects by name where a comparison operator may appear.
var unsupportedOperators = map[string]string{
	"IN":      "IN",
	"NIN":     "NIN",
	"BETWEEN": "BETWEEN",
	"LIKE":    "LIKE",
	"IS":      "IS (use IS_DEFINED())",
}

func (p *parser) query() (*Query, error) {
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	q := &Query{}
	switch {
	case p.tok.kind == tokStar:
		if err := p.advance(); err != nil {
			return nil, err
		}
	case p.isKeyword("COUNT"):
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokLParen {
			return nil, p.unexpected("expected '(' after COUNT")
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, errorf(ErrUnsupported, pos, "COUNT with an argument is not supported (use COUNT())")
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		q.Count = true
		q.CountAlias = "$1"
		if p.isKeyword("AS") {
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind != tokIdent {
				return nil, p.unexpected("expected a name after AS")
			}
			q.CountAlias = p.tok.text
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if p.tok.kind == tokComma {
			return nil, errorf(ErrUnsupported, p.tok.pos, "selecting more than COUNT() is not supported")
		}
	case p.isKeyword("TOP"):
		return nil, errorf(ErrUnsupported, p.tok.pos, "TOP is not supported (page with x-ms-max-item-count)")
	case p.isKeyword("DISTINCT"):
		return nil, errorf(ErrUnsupported, p.tok.pos, "DISTINCT is not supported")
	case p.tok.kind == tokIdent && !p.isKeyword("FROM"):
		return nil, errorf(ErrUnsupported, p.tok.pos, "selecting fields is not supported (use SELECT * or SELECT COUNT())")
	default:
		return nil, p.unexpected("expected '*' or COUNT() after SELECT")
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	if err := p.source(q); err != nil {
		return nil, err
	}
	if p.isKeyword("WHERE") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		q.where = e
	}
	if p.tok.kind == tokIdent {
		if name, ok := unsupportedClauses[strings.ToUpper(p.tok.text)]; ok {
			return nil, errorf(ErrUnsupported, p.tok.pos, "%s is not supported", name)
		}
	}
	if p.tok.kind != tokEOF {
		return nil, p.unexpected("expected the end of the query")
	}
	return q, nil
}

// source parses "devices" or "devices.modules".
func (p *parser) source(q *Query) error {
	pos := p.tok.pos
	if p.tok.kind != tokIdent {
		return p.unexpected("expected devices or devices.modules after FROM")
	}
	if !strings.EqualFold(p.tok.text, "devices") {
		return errorf(ErrUnsupported, pos, "FROM %s is not supported (use devices or devices.modules)", p.tok.text)
	}
	if err := p.advance(); err != nil {
		return err
	}
	q.From = Devices
	if p.tok.kind != tokDot {
		return nil
	}
	if err := p.advance(); err != nil {
		return err
	}
	if p.tok.kind != tokIdent {
		return p.unexpected("expected a collection name after 'devices.'")
	}
	if !strings.EqualFold(p.tok.text, "modules") {
		return errorf(ErrUnsupported, pos, "FROM devices.%s is not supported (use devices or devices.modules)", p.tok.text)
	}
	q.From = Modules
	p.from = Modules
	return p.advance()
}

// enter counts one level of nesting and fails past MaxDepth.
func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return errorf(ErrTooDeep, p.tok.pos, "conditions nest deeper than %d levels", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) or() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("OR") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &logical{or: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) and() (expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("AND") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = &logical{l: l, r: r}
	}
	return l, nil
}

func (p *parser) not() (expr, error) {
	if p.isKeyword("NOT") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return &notExpr{e: e}, nil
	}
	return p.compare()
}

func (p *parser) compare() (expr, error) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.tok.kind == tokOp:
			op := opOf(p.tok.text)
			if err := p.enter(); err != nil {
				return nil, err
			}
			defer p.leave()
			if err := p.advance(); err != nil {
				return nil, err
			}
			r, err := p.operand()
			if err != nil {
				return nil, err
			}
			l = &comparison{op: op, l: l, r: r}
			continue
		case p.tok.kind == tokIdent:
			if name, ok := unsupportedOperators[strings.ToUpper(p.tok.text)]; ok {
				return nil, errorf(ErrUnsupported, p.tok.pos, "the %s operator is not supported", name)
			}
		case p.tok.kind == tokOther || p.tok.kind == tokStar:
			switch p.tok.text {
			case "+", "-", "*", "/", "%":
				return nil, errorf(ErrUnsupported, p.tok.pos, "arithmetic ('%s') is not supported", p.tok.text)
			case "|":
				return nil, errorf(ErrUnsupported, p.tok.pos, "string concatenation ('||') is not supported")
			}
		}
		return l, nil
	}
}

// functions names functions of IoT Hub's language this subset rejects by
// name; IS_DEFINED is the one implemented.
var functions = map[string]bool{
	"IS_BOOL": true, "IS_NUMBER": true, "IS_STRING": true, "IS_OBJECT": true,
	"IS_ARRAY": true, "IS_NULL": true, "IS_PRIMITIVE": true,
	"STARTSWITH": true, "ENDSWITH": true, "CONTAINS": true, "LENGTH": true,
	"LOWER": true, "UPPER": true, "CONCAT": true, "SUBSTRING": true, "INDEX_OF": true,
	"LTRIM": true, "RTRIM": true, "ABS": true, "CEILING": true, "FLOOR": true,
	"ROUND": true, "ARRAY_CONTAINS": true, "ARRAY_LENGTH": true, "ST_DISTANCE": true,
	"ST_WITHIN": true, "COUNT": true, "SUM": true, "AVG": true, "MIN": true, "MAX": true,
}

func (p *parser) operand() (expr, error) {
	t := p.tok
	switch t.kind {
	case tokString:
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &literal{v: t.text}, nil
	case tokNumber:
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &literal{v: t.num}, nil
	case tokLParen:
		// or() counts the nesting.
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, p.unexpected("expected ')'")
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return e, nil
	case tokOther:
		switch t.text {
		case "-":
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind != tokNumber {
				return nil, errorf(ErrUnsupported, t.pos, "arithmetic ('-') is not supported")
			}
			n := p.tok.num
			if err := p.advance(); err != nil {
				return nil, err
			}
			return &literal{v: -n}, nil
		case "[":
			return nil, errorf(ErrUnsupported, t.pos, "array literals are not supported")
		case "{":
			return nil, errorf(ErrUnsupported, t.pos, "object literals are not supported")
		}
		return nil, p.unexpected("expected a value")
	case tokIdent:
		upper := strings.ToUpper(t.text)
		switch upper {
		case "TRUE", "FALSE":
			if err := p.advance(); err != nil {
				return nil, err
			}
			return &literal{v: upper == "TRUE"}, nil
		case "NULL":
			if err := p.advance(); err != nil {
				return nil, err
			}
			return &literal{v: nil}, nil
		case "AND", "OR", "NOT", "SELECT", "FROM", "WHERE":
			return nil, p.unexpected("expected a value")
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tokLParen {
			return p.call(t)
		}
		return p.path(t)
	}
	return nil, p.unexpected("expected a value")
}

// call parses the arguments of the function named by t; the current token
// is its '('.
func (p *parser) call(name token) (expr, error) {
	upper := strings.ToUpper(name.text)
	if upper != "IS_DEFINED" {
		if functions[upper] {
			return nil, errorf(ErrUnsupported, name.pos, "function %s is not supported (only IS_DEFINED)", upper)
		}
		return nil, errorf(ErrUnsupported, name.pos, "unknown function %s (only IS_DEFINED is supported)", name.text)
	}
	if err := p.advance(); err != nil { // or() counts the nesting
		return nil, err
	}
	arg, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind == tokComma {
		return nil, errorf(ErrSyntax, p.tok.pos, "IS_DEFINED takes one argument")
	}
	if p.tok.kind != tokRParen {
		return nil, p.unexpected("expected ')'")
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	return &isDefined{e: arg}, nil
}

// path parses the rest of a dotted path whose first name is first.
func (p *parser) path(first token) (expr, error) {
	segs := []string{first.text}
	for p.tok.kind == tokDot {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokIdent {
			if p.tok.kind == tokOther && p.tok.text == "[" {
				return nil, errorf(ErrUnsupported, p.tok.pos, "bracket property access is not supported")
			}
			return nil, p.unexpected("expected a name after '.'")
		}
		segs = append(segs, p.tok.text)
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if p.tok.kind == tokOther && p.tok.text == "[" {
		return nil, errorf(ErrUnsupported, p.tok.pos, "bracket property access is not supported")
	}
	// A path may name the source first, as in "devices.tags.x" or
	// "devices.modules.moduleId"; the twin document is that source's item.
	if len(segs) > 2 && p.from == Modules && strings.EqualFold(segs[0], "devices") && strings.EqualFold(segs[1], "modules") {
		segs = segs[2:]
	} else if len(segs) > 1 && strings.EqualFold(segs[0], "devices") {
		segs = segs[1:]
	}
	return &path{segs: segs}, nil
}
