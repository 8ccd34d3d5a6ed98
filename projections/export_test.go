package projections

// SetBulkBytes lets a test make search's bulk requests small.
func SetBulkBytes(s *Search, n int) { s.bulkBytes = n }
