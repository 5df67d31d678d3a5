package hostsched

import (
	"math"
	"testing"
)

func TestMatchExtraSpec(t *testing.T) {
	tests := []struct {
		name       string
		value, req string
		want       bool
	}{
		// No operator: the whole of req equals value.
		{"plain equal", "1", "1", true},
		{"plain empty value", "", "1", false},
		{"plain differs", "3", "1", false},
		{"plain is not a prefix", "222", "2", false},
		{"plain keeps whitespace", "1", " 1", false},
		{"plain compares whole req", "a b", "a b", true},
		{"empty req equals empty value", "", "", true},
		{"empty req against a value", "1", "", false},
		{"blank req is compared whole", "", "  ", false},
		{"unknown op > is plain", "4", "> 2", false},
		{"unknown op > equal text", "> 2", "> 2", true},
		{"unknown op < is plain", "1", "< 2", false},
		{"<is> is not an operator in Nova", "True", "<is> True", false},
		{"<is> compared whole", "<is> True", "<is> True", true},
		{"case of an op matters", "1", "S== 1", false},

		// = is "at least", as a number.
		{"= same", "123", "= 123", true},
		{"= greater", "124", "= 123", true},
		{"= smaller", "34", "= 234", false},
		{"= compares numbers not strings", "1000", "= 234", true},
		{"= without operand", "34", "=", false},
		{"= operand after blanks", "5", "=   \t 3", true},
		{"only the first operand counts", "5", ">= 3 100", true},

		// ==, !=, >=, <= as numbers.
		{"== float and int", "2.0", "== 2", true},
		{"== exponent", "1000", "== 1e3", true},
		{"== underscores", "1000", "== 1_000", true},
		{"== differs", "2", "== 3", false},
		{"!= differs", "2", "!= 3", true},
		{"!= same number other text", "2.0", "!= 2", false},
		{">= greater", "3", ">= 1", true},
		{">= equal", "3", ">= 3.0", true},
		{">= smaller", "2", ">= 3", false},
		{"<= smaller", "2", "<= 10", true},
		{"<= greater", "3", "<= 2", false},
		{"<= negative", "-5", "<= -4.5", true},
		{"inf is a number", "inf", ">= 1e308", true},
		{"-Infinity is a number", "-Infinity", "<= -1e308", true},
		{"overflow is infinity", "1e400", "== inf", true},
		{"underflow is zero", "1e-400", "== 0", true},
		{"nan equals nothing", "nan", "== nan", false},
		{"nan differs from itself", "nan", "!= nan", true},
		{"nan is not at least", "nan", ">= 0", false},
		{"non-ASCII digits", "٣", "== 3", true},
		{"value surrounded by spaces", " 5 ", "== 5", true},

		// A value or operand that is not a number: Nova raises; no match.
		{"unparsable value", "abc", ">= 1", false},
		{"unparsable value for !=", "abc", "!= 1", false},
		{"unparsable operand", "1", "== abc", false},
		{"unparsable =", "x86_64", "= 1", false},
		{"hex is not a number", "16", "== 0x10", false},
		{"true is not a number", "true", "== 1", false},
		{"empty value is not a number", "", "<= 1", false},
		{"misplaced underscore", "1000", "== 1__000", false},
		{"value with inner space", "1 2", ">= 0", false},

		// String comparisons, by code point.
		{"s== same", "123", "s== 123", true},
		{"s== longer", "1234", "s== 123", false},
		{"s== is exact", "2.0", "s== 2", false},
		{"s!= differs", "1234", "s!= 123", true},
		{"s!= same", "123", "s!= 123", false},
		{"s>= lexical", "1000", "s>= 234", false},
		{"s>= equal", "abc", "s>= abc", true},
		{"s<= lexical", "1234", "s<= 1000", false},
		{"s< lexical", "2", "s< 12", false},
		{"s< shorter prefix", "ab", "s< abc", true},
		{"s> lexical", "12", "s> 2", false},
		{"s> greater", "b", "s> a", true},
		{"s< by code point", "z", "s< é", true},
		{"s== without operand", "", "s==", false},

		// <in>: substring.
		{"<in> substring", "12311321", "<in> 11", true},
		{"<in> whole", "12311321", "<in> 12311321", true},
		{"<in> trailing words ignored", "12311321", "<in> 12311321 <in>", true},
		{"<in> absent", "12310321", "<in> 11", false},
		{"<in> absent, trailing words", "12310321", "<in> 11 <in>", false},
		{"<in> without operand", "abc", "<in>", false},

		// <all-in>: every operand is a substring.
		{"<all-in> all", "['aes', 'mmx', 'aux']", "<all-in> aes mmx", true},
		{"<all-in> one", "['aes', 'mmx', 'aux']", "<all-in> mmx", true},
		{"<all-in> absent", "['aes', 'mmx', 'aux']", "<all-in>  txt", false},
		{"<all-in> none", "['aes', 'mmx', 'aux']", "<all-in> txt 3dnow", false},
		{"<all-in> one missing", "['aes', 'mmx', 'aux']", "<all-in> txt aes", false},
		{"<all-in> substrings not items", "aesmmx", "<all-in> aes mmx", true},
		{"<all-in> without operand", "aes", "<all-in>", false},

		// <or>: one of the operands at every other word.
		{"<or> second", "12", "<or> 11 <or> 12", true},
		{"<or> trailing keyword", "12", "<or> 11 <or> 12 <or>", true},
		{"<or> none", "13", "<or> 11 <or> 12", false},
		{"<or> none, trailing keyword", "13", "<or> 11 <or> 12 <or>", false},
		{"<or> first", "11", "<or> 11", true},
		{"<or> keyword words are not compared", "x", "<or> 11 x 12", false},
		{"<or> any word stands for the keyword", "12", "<or> 11 x 12", true},
		{"<or> value <or> is not an operand", "<or>", "<or> 11 <or> 12", false},
		{"<or> without operand (Nova raises)", "", "<or>", false},
		{"<or> compares strings", "1.0", "<or> 1 <or> 2", false},
		{"<or> leading whitespace", "b", "  <or> a\t<or>\nb ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchExtraSpec(tt.value, tt.req); got != tt.want {
				t.Errorf("matchExtraSpec(%q, %q) = %v, want %v", tt.value, tt.req, got, tt.want)
			}
		})
	}
}

func TestPyFloat(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true},
		{"-2.5", -2.5, true},
		{"+.5e-3", 0.0005, true},
		{"5.", 5, true},
		{".5", 0.5, true},
		{"1E5", 1e5, true},
		{"1.e2", 100, true},
		{"1_000", 1000, true},
		{"1_0e1_0", 1e11, true},
		{"1.5_0", 1.5, true},
		{" \t7\n", 7, true},
		{"\u00a07\u3000", 7, true},
		{"inf", math.Inf(1), true},
		{"-iNF", math.Inf(-1), true},
		{"Infinity", math.Inf(1), true},
		{"+NaN", nan, true},
		{"-nan", nan, true},
		{"1e400", math.Inf(1), true},
		{"-1e400", math.Inf(-1), true},
		{"1e-400", 0, true},
		{"٣", 3, true},
		{"١.5", 1.5, true},
		{"𝟙𝟚", 12, true},
		{"", 0, false},
		{" ", 0, false},
		{".", 0, false},
		{"e5", 0, false},
		{"1e", 0, false},
		{"1e+", 0, false},
		{"--1", 0, false},
		{"1__0", 0, false},
		{"_1", 0, false},
		{"1_", 0, false},
		{"1_.5", 0, false},
		{"1._5", 0, false},
		{"1e_5", 0, false},
		{"0x10", 0, false},
		{"0x1p4", 0, false},
		{"infinit", 0, false},
		{"nan1", 0, false},
		{"in_f", 0, false},
		{"1\x1c", 0, false},
		{"1 2", 0, false},
		{"1,5", 0, false},
		{"½", 0, false},
	}
	for _, tt := range tests {
		got, ok := pyFloat(tt.in)
		same := got == tt.want || (math.IsNaN(got) && math.IsNaN(tt.want))
		if ok != tt.ok || (ok && !same) {
			t.Errorf("pyFloat(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNextWord(t *testing.T) {
	tests := []struct{ in, word, rest string }{
		{"", "", ""},
		{"  \t", "", ""},
		{"a", "a", ""},
		{" a  b c ", "a", "b c "},
		{"a\x1cb", "a", "b"},
		{"a\u200bb c", "a\u200bb", "c"},
		{"\u3000a\u00a0b", "a", "b"},
	}
	for _, tt := range tests {
		if w, r := nextWord(tt.in); w != tt.word || r != tt.rest {
			t.Errorf("nextWord(%q) = %q, %q; want %q, %q", tt.in, w, r, tt.word, tt.rest)
		}
	}
}
