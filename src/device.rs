//! Starting the core. (Being written.)
