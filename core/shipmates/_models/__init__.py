"""Models: the interface (``_model``), the registry (``_registry``), the litellm backend
(``_litellm``) and the offline router (``_offline``).
"""
