package readmodel_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/chatsys/chat/readmodel"
)

func TestListOf(t *testing.T) {
	t.Parallel()
	stop := errors.New("client gone")
	tests := []struct {
		name    string
		items   []int
		stopAt  int // Each's function fails at this item; 0 never
		want    []int
		wantErr error
	}{
		{"every item in order", []int{1, 2, 3}, 0, []int{1, 2, 3}, nil},
		{"an empty page", nil, 0, nil, nil},
		{"a failing writer stops the walk", []int{1, 2, 3}, 2, []int{1}, stop},
	}
	for _, tc := range tests {
		l := readmodel.ListOf(10, 12, tc.items...)
		if l.Total != 10 || l.Last != 12 {
			t.Errorf("%s: total %d, last %d", tc.name, l.Total, l.Last)
		}
		var got []int
		err := l.Each(context.Background(), func(v int) error {
			if v == tc.stopAt {
				return stop
			}
			got = append(got, v)
			return nil
		})
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
