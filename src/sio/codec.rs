//! Pure Engine.IO v4 / Socket.IO v5 codec. (Being written.)
