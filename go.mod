module github.com/personad/personad

go 1.26.8

require github.com/qmuntal/stateless v1.7.2
