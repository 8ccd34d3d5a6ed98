package events

import "unicode/utf8"

// A payload as the codec writes it — its fields in order, no spaces,
// integers, and strings without escapes — is read by a scanner of its own:
// the JSON decoder reads one by reflection after a validating pass, several
// times the cost, and a replay decodes millions. Anything else (an escape,
// another order, a field more or less, a space) goes to the JSON decoder,
// so both read every payload alike.

// scanner reads a payload from its start.
type scanner struct {
	data []byte
	at   int
}

// text reads the next field, which must be name, as a string.
func (s *scanner) text(name string, v *string) bool {
	return s.field(name) && s.str(v)
}

// number reads the next field, which must be name, as an integer.
func (s *scanner) number(name string, v *int64) bool {
	return s.field(name) && s.int(v)
}

// field reads `"name":`, after the object's { for the first field and a
// comma for the others.
func (s *scanner) field(name string) bool {
	sep := byte(',')
	if s.at == 0 {
		sep = '{'
	}
	d, n := s.data[s.at:], len(name)
	if len(d) < n+4 || d[0] != sep || d[1] != '"' || string(d[2:2+n]) != name || d[2+n] != '"' || d[3+n] != ':' {
		return false
	}
	s.at += n + 4
	return true
}

// str reads a string of valid UTF-8 with no escape and no control
// character: its bytes are then its value.
func (s *scanner) str(v *string) bool {
	d := s.data[s.at:]
	if len(d) == 0 || d[0] != '"' {
		return false
	}
	for i := 1; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			if !utf8.Valid(d[1:i]) {
				return false
			}
			*v = string(d[1:i])
			s.at += i + 1
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

// int reads an integer as JSON writes one (no leading zero, no fraction
// or exponent) that fits in an int64.
func (s *scanner) int(v *int64) bool {
	d := s.data[s.at:]
	i, neg := 0, len(d) > 0 && d[0] == '-'
	if neg {
		i++
	}
	start := i
	var n uint64
	for ; i < len(d) && d[i] >= '0' && d[i] <= '9'; i++ {
		if n > (1<<63)/10 {
			return false
		}
		n = n*10 + uint64(d[i]-'0')
	}
	digits := i - start
	if digits == 0 || digits > 1 && d[start] == '0' || n > 1<<63 || n == 1<<63 && !neg {
		return false
	}
	*v = int64(n)
	if neg {
		*v = -int64(n)
	}
	s.at += i
	return true
}

// end reads the object's closing brace, which must end the payload.
func (s *scanner) end() bool {
	return s.at == len(s.data)-1 && s.data[s.at] == '}'
}

func fastApplication(data []byte) (token, name string, ok bool) {
	s := scanner{data: data}
	ok = s.text("token", &token) && s.text("name", &name) && s.end()
	return token, name, ok
}

func fastChat(data []byte) (token string, number int64, name string, ok bool) {
	s := scanner{data: data}
	ok = s.text("token", &token) && s.number("number", &number) && s.text("name", &name) && s.end()
	return token, number, name, ok
}

func fastMessage(data []byte) (token string, chat, number int64, body string, ok bool) {
	s := scanner{data: data}
	ok = s.text("token", &token) && s.number("chat_number", &chat) && s.number("number", &number) && s.text("body", &body) && s.end()
	return token, chat, number, body, ok
}
