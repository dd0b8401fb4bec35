package main

import (
	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/resources/election"
	"github.com/copycat-go/copycat/resources/group"
	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/resources/long"
	"github.com/copycat-go/copycat/resources/queue"
	"github.com/copycat-go/copycat/resources/set"
	"github.com/copycat-go/copycat/resources/value"
	"github.com/copycat-go/copycat/runtime"
)

// builtins are the resource types every copycat member hosts.
var builtins = []*runtime.ResourceType{
	lock.LockType, dmap.MapType, election.ElectionType, value.ValueType,
	long.LongType, set.SetType, queue.QueueType, group.GroupType,
}
