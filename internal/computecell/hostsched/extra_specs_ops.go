package hostsched

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matchExtraSpec reports whether value (one item of a host aggregate's
// metadata) satisfies req (a flavor extra spec's value), as Nova's
// nova.scheduler.filters.extra_specs_ops.match does.
//
// req is split into words at whitespace. When its first word is one of the
// operators below, the words after it are its operands; otherwise (no
// operator, an unknown one such as "<is>", "<" or ">", or an empty req) the
// whole of req, whitespace included, must equal value.
//
//	=    value ≥ operand, as numbers (like vcpus)
//	==   value = operand, as numbers
//	!=   value ≠ operand, as numbers
//	>=   value ≥ operand, as numbers
//	<=   value ≤ operand, as numbers
//	s==  s!=  s<  s<=  s>  s>=   the same comparisons of strings
//	<in>      the operand is a substring of value
//	<all-in>  every operand is a substring of value
//	<or>      value equals one of the operands at every other word:
//	          "<or> a <or> b" (the words in between are skipped unread)
//
// Only the first operand counts, except for <all-in> and <or>; an operator
// with no operand matches nothing. Numbers are read as Python's float()
// reads them (pyFloat), so "1e3", "1_000", " inf", "nan" and non-ASCII
// decimal digits are numbers; strings compare by code point.
//
// Where Nova raises instead of answering we answer false, so the item does
// not match and another item of the host's metadata still may: a numeric
// operator with a value or operand that is not a number (Nova's float()
// raises ValueError) and "<or>" with no operand (IndexError). In Nova the
// exception escapes the filter and fails the whole scheduling request —
// or not, depending on the order Python happens to iterate the host's
// metadata set in, which our answer makes deterministic.
func matchExtraSpec(value, req string) bool {
	op, rest := nextWord(req)
	var arg string
	switch op {
	case "<or>":
		// Operands at even positions after the operator; the odd ones are
		// the "<or>" keywords, or whatever stands in their place.
		for {
			arg, rest = nextWord(rest)
			if arg == "" {
				return false
			}
			if arg == value {
				return true
			}
			if _, rest = nextWord(rest); rest == "" {
				return false
			}
		}
	case "<all-in>":
		if arg, rest = nextWord(rest); arg == "" {
			return false
		}
		for ; arg != ""; arg, rest = nextWord(rest) {
			if !strings.Contains(value, arg) {
				return false
			}
		}
		return true
	case "=", "==", "!=", ">=", "<=", "s==", "s!=", "s<", "s<=", "s>", "s>=", "<in>":
		if arg, _ = nextWord(rest); arg == "" {
			return false
		}
	default:
		return value == req
	}
	switch op {
	case "s==":
		return value == arg
	case "s!=":
		return value != arg
	case "s<":
		return value < arg
	case "s<=":
		return value <= arg
	case "s>":
		return value > arg
	case "s>=":
		return value >= arg
	case "<in>":
		return strings.Contains(value, arg)
	}
	x, ok := pyFloat(value)
	if !ok {
		return false
	}
	y, ok := pyFloat(arg)
	if !ok {
		return false
	}
	switch op {
	case "=", ">=":
		return x >= y
	case "==":
		return x == y
	case "!=":
		return x != y
	default: // "<="
		return x <= y
	}
}

// nextWord returns the first word of s, as Python's str.split() with no
// argument splits, and what follows it; word is "" when s has no more
// words, and rest is "" when nothing but whitespace follows the word.
func nextWord(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, pyIsSpace)
	end := strings.IndexFunc(s, pyIsSpace)
	if end < 0 {
		return s, ""
	}
	return s[:end], strings.TrimLeftFunc(s[end:], pyIsSpace)
}

// pyIsSpace reports whether Python's str.isspace() holds for r, which is
// what str.split() and str.strip() cut at: Go's unicode.IsSpace plus the
// ASCII information separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyFloat parses s as Python 3's float(str) does, reporting false where
// float raises ValueError. Python first turns every non-ASCII decimal digit
// into its ASCII digit and every non-ASCII whitespace into a space, then
// strips ASCII whitespace (not U+001C..U+001F) and reads an optional sign
// followed by "inf", "infinity" or "nan" in any case, or by a decimal
// number with an optional exponent, whose digits may be grouped by single
// underscores between them. There are no hexadecimal forms. A number too
// large for a float64 is an infinity and one too small is zero, not an
// error.
func pyFloat(s string) (float64, bool) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if !ascii {
		var b strings.Builder
		for _, r := range s {
			switch {
			case r < utf8.RuneSelf:
				b.WriteRune(r)
			case unicode.IsSpace(r):
				b.WriteByte(' ')
			case unicode.Is(unicode.Nd, r):
				b.WriteByte('0' + decimalDigit(r))
			default:
				return 0, false
			}
		}
		s = b.String()
	}
	s = strings.Trim(s, " \t\n\v\f\r")
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity", "nan":
		// strconv does not take a signed NaN; Python does.
		f, err := strconv.ParseFloat(strings.ToLower(body), 64)
		if err != nil {
			return 0, false
		}
		if s[0] == '-' {
			f = -f
		}
		return f, true
	}
	if !pyDecimal(body) {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil && !isRangeError(err) {
		return 0, false
	}
	return f, true
}

// isRangeError reports whether err is strconv's out-of-range error, for
// which ParseFloat still returns the infinity (or zero) Python gives.
func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// pyDecimal reports whether s (ASCII, unsigned) is a decimal number in
// Python's float grammar: digits with an optional fraction, or a fraction
// alone, then an optional exponent with an optional sign; each run of
// digits may have single underscores between its digits.
func pyDecimal(s string) bool {
	i, intDigits := pyDigits(s, 0)
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		i, fracDigits = pyDigits(s, i+1)
	}
	if intDigits == 0 && fracDigits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		var expDigits int
		if i, expDigits = pyDigits(s, i); expDigits == 0 {
			return false
		}
	}
	return i == len(s)
}

// pyDigits reads a run of digits of s from i, allowing one underscore
// between two digits, and returns where it stopped and how many digits it
// read.
func pyDigits(s string, i int) (end, n int) {
	for i < len(s) && isDigit(s[i]) {
		i++
		n++
		if i+1 < len(s) && s[i] == '_' && isDigit(s[i+1]) {
			i++
		}
	}
	return i, n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// decimalDigit returns the value of r, a Unicode decimal digit (category
// Nd). Unicode assigns these only in contiguous runs of ten, zero to nine,
// so a digit's value is its distance from the start of the block of Nd
// code points around it, modulo ten.
func decimalDigit(r rune) byte {
	start := r
	for unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return byte((r - start) % 10)
}
