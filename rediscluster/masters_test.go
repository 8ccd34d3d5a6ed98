package rediscluster

import "testing"

func TestParseSlots(t *testing.T) {
	got, err := parseSlots([]string{"0-2", "7", "[8->-abc]", "16383"})
	if err != nil || len(got) != 5 || got[0] != 0 || got[2] != 2 || got[3] != 7 || got[4] != 16383 {
		t.Fatalf("parseSlots = %v, %v", got, err)
	}
	if _, err := parseSlots([]string{"5-16384"}); err == nil {
		t.Error("a range past the last slot was accepted")
	}
}
