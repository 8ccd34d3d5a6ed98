package readmodel

// MessagesByNumber is the list of a chat's messages in the given order, as
// search reads its hits.
func MessagesByNumber(q *Queries, token string, chat int64, numbers []int64) List[Message] {
	return List[Message]{read: q.messagesByNumber(token, chat, numbers)}
}
