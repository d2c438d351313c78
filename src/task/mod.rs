//! Task execution. (Being written.)
