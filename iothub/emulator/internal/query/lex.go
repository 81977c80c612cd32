package query

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the class of a lexical token.
type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokIdent          // name or keyword: letters, digits, _ and $, not starting with a digit
	tokString         // quoted string; text holds the decoded value
	tokNumber         // decimal number; num holds the value
	tokOp             // = != <> < <= > >=
	tokLParen         // (
	tokRParen         // )
	tokDot            // .
	tokStar           // *
	tokComma          // ,
	tokOther          // any other punctuation: [ ] { } + - / % : ;, reported by the parser
)

// token is one lexical token. pos is its byte offset in the query.
type token struct {
	kind tokKind
	pos  int
	text string // identifier, decoded string, operator or the punctuation itself
	num  float64
}

// lexer splits a query into tokens on demand.
type lexer struct {
	src string
	pos int
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// next returns the next token, or an *Error for text that is no token.
func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
			l.pos++
			continue
		}
		break
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokIdent, pos: start, text: l.src[start:l.pos]}, nil
	case isDigit(c):
		return l.number(start)
	case c == '\'' || c == '"':
		return l.str(start, c)
	}
	l.pos++
	switch c {
	case '(':
		return token{kind: tokLParen, pos: start, text: "("}, nil
	case ')':
		return token{kind: tokRParen, pos: start, text: ")"}, nil
	case '.':
		if l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos = start
			return l.number(start)
		}
		return token{kind: tokDot, pos: start, text: "."}, nil
	case '*':
		return token{kind: tokStar, pos: start, text: "*"}, nil
	case ',':
		return token{kind: tokComma, pos: start, text: ","}, nil
	case '=':
		return token{kind: tokOp, pos: start, text: "="}, nil
	case '!':
		if l.pos < len(l.src) && l.src[l.pos] == '=' {
			l.pos++
			return token{kind: tokOp, pos: start, text: "!="}, nil
		}
		return token{}, errorf(ErrSyntax, start, "'!' must be followed by '='")
	case '<':
		if l.pos < len(l.src) && (l.src[l.pos] == '=' || l.src[l.pos] == '>') {
			l.pos++
		}
		return token{kind: tokOp, pos: start, text: l.src[start:l.pos]}, nil
	case '>':
		if l.pos < len(l.src) && l.src[l.pos] == '=' {
			l.pos++
		}
		return token{kind: tokOp, pos: start, text: l.src[start:l.pos]}, nil
	case '[', ']', '{', '}', '+', '-', '/', '%', ':', ';', '|', '&', '^', '~', '?', '@', '#', '`':
		return token{kind: tokOther, pos: start, text: string(c)}, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	if r == utf8.RuneError {
		return token{}, errorf(ErrSyntax, start, "invalid UTF-8")
	}
	return token{}, errorf(ErrSyntax, start, "unexpected character %q", r)
}

// number reads a decimal number: digits, an optional fraction and exponent.
func (l *lexer) number(start int) (token, error) {
	s := l.src
	i := start
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	if i < len(s) && isIdentPart(s[i]) {
		return token{}, errorf(ErrSyntax, start, "malformed number")
	}
	text := s[start:i]
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return token{}, errorf(ErrSyntax, start, "number out of range")
	}
	l.pos = i
	return token{kind: tokNumber, pos: start, text: text, num: v}, nil
}

// str reads a string in quote q. A backslash escapes the next character as
// in JSON (\' is also accepted); a doubled quote stands for one quote, as in SQL.
func (l *lexer) str(start int, q byte) (token, error) {
	s := l.src
	i := start + 1
	var b strings.Builder
	for {
		if i >= len(s) {
			return token{}, errorf(ErrSyntax, start, "unterminated string")
		}
		c := s[i]
		switch {
		case c == q:
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i += 2
				continue
			}
			l.pos = i + 1
			v := b.String()
			if !utf8.ValidString(v) {
				return token{}, errorf(ErrSyntax, start, "invalid UTF-8 in string")
			}
			return token{kind: tokString, pos: start, text: v}, nil
		case c == '\\':
			if i+1 >= len(s) {
				return token{}, errorf(ErrSyntax, start, "unterminated string")
			}
			e := s[i+1]
			i += 2
			switch e {
			case '\'', '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+4 > len(s) {
					return token{}, errorf(ErrSyntax, i-2, "malformed \\u escape")
				}
				n, err := strconv.ParseUint(s[i:i+4], 16, 16)
				if err != nil {
					return token{}, errorf(ErrSyntax, i-2, "malformed \\u escape")
				}
				i += 4
				r := rune(n)
				if r >= 0xD800 && r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if m, err := strconv.ParseUint(s[i+2:i+6], 16, 16); err == nil && m >= 0xDC00 && m < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (rune(m) - 0xDC00)
						i += 6
					}
				}
				if r >= 0xD800 && r < 0xE000 {
					r = utf8.RuneError
				}
				b.WriteRune(r)
			default:
				return token{}, errorf(ErrSyntax, i-2, "unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
			i++
		}
	}
}
