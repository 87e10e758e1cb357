// Package docs holds no code: its tests keep the README's promises about
// the repository itself (the embedding example compiles, the systemd unit
// is valid as printed, the licence and the go line are right), and embed/
// is the embedding example the README prints.
package docs
