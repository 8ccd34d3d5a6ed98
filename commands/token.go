package commands

import "github.com/chatsys/chat/apptoken"

// NewToken returns a new application token (see package apptoken for its
// shape).
func NewToken() string { return apptoken.New() }
