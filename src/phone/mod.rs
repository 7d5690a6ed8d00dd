//! The phone both front ends drive (the command line and the window): what they used to do
//! each in their own way. So far: the built-in recorder and the key its files are sealed to.

pub mod builtin_recorder;
